/**
 * The table of every type the PostgreSQL connectors promise, shared by the source's
 * value-by-value test and the end-to-end copy test: each type, its array, an enum and a
 * domain, with ordinary values, edge values (NaN, infinities, BC dates, years past 9999, the
 * 64-bit limits, empty and nested arrays, quoting) and NULL in every column.
 */

export const typesSchema = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN amount AS numeric(10,2) CHECK (VALUE >= 0);
CREATE TABLE types (
  id int PRIMARY KEY,
  c_smallint smallint, c_integer integer, c_bigint bigint, c_numeric numeric(20,4), c_numeric_free numeric,
  c_real real, c_double double precision, c_boolean boolean,
  c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea,
  c_date date, c_time time, c_timetz timetz, c_timestamp timestamp, c_timestamptz timestamptz, c_interval interval,
  c_uuid uuid, c_json json, c_jsonb jsonb, c_inet inet, c_cidr cidr, c_macaddr macaddr, c_mood mood, c_amount amount,
  a_smallint smallint[], a_integer integer[], a_bigint bigint[], a_numeric numeric(10,2)[], a_numeric_special numeric[],
  a_real real[], a_double double precision[], a_boolean boolean[], a_text text[], a_varchar varchar(10)[], a_char char(2)[],
  a_bytea bytea[], a_date date[], a_time time[], a_timetz timetz[], a_timestamp timestamp[], a_timestamptz timestamptz[],
  a_interval interval[], a_uuid uuid[], a_json json[], a_jsonb jsonb[], a_inet inet[], a_cidr cidr[], a_macaddr macaddr[],
  a_mood mood[], a_nested integer[]
)`;

// Row 1: ordinary values. Row 2: edge values. Row 3: NULL everywhere.
export const typesRows = (offset: number): string => `
INSERT INTO types VALUES (${offset + 1},
  -32768, 2147483647, 9223372036854775807, 12345678901234.5670, -0.000000000000000000000000000001,
  1.1, 3.141592653589793, true,
  E'h\\u00e9llo "w\\u00f6rld" \\\\ tab\\t nl\\n \\U0001F600', 'varchar', 'ab', '\\x00ff10',
  '2024-02-29', '23:59:59.999999', '12:00:00.123456+05:30', '2024-03-01 10:00:00.123456', '2024-03-01 10:00:00.123456+02',
  '1 year 2 mons 3 days 04:05:06.789',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1, "a": [1, 2.50]}', '{"big": 12345678901234567890, "dec": 1.10, "s": "x"}',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 'happy', 12.3,
  '{1,-2,NULL}', '{}', '{9223372036854775807,-9223372036854775808,1}', '{1.5,NULL,-0.01}', '{NaN,Infinity,-Infinity,1.000}',
  '{NaN,Infinity,-Infinity,0.5}', '{1e300,-0}', '{t,f,NULL}',
  ARRAY['a b', NULL, 'NULL', 'x"y', '', E'back\\\\slash', 'comma,brace}{'], '{x}', ARRAY['a'],
  ARRAY['\\x01'::bytea, NULL], ARRAY['2000-01-01'::date, 'infinity'], ARRAY['00:00:00'::time], ARRAY['01:02:03-08'::timetz],
  ARRAY['1999-12-31 23:59:59.5'::timestamp], ARRAY['2020-01-01 00:00:00+00'::timestamptz, '-infinity'],
  ARRAY['-1 day'::interval], ARRAY['00000000-0000-0000-0000-000000000000'::uuid], ARRAY['{"k": [1]}'::json], ARRAY['{"n": 1.0}'::jsonb],
  ARRAY['::1'::inet], ARRAY['192.168.1.0/24'::cidr], ARRAY['ff:ff:ff:ff:ff:ff'::macaddr],
  ARRAY['sad', 'ok']::mood[], '{{1,2},{3,NULL}}');
INSERT INTO types (id, c_smallint, c_bigint, c_numeric, c_numeric_free, c_real, c_double, c_boolean, c_text, c_char, c_bytea,
                   c_date, c_timestamp, c_timestamptz, c_json, c_jsonb, c_amount)
VALUES (${offset + 2}, 0, -9223372036854775808, 0, 'NaN', 'NaN', '-Infinity', false, '', '', '',
        '0044-03-15 BC', '10000-01-01 00:00:00', 'infinity', '[]', '"str"', 0.10);
INSERT INTO types (id) VALUES (${offset + 3});`;
