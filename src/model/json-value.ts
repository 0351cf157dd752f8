/** Plain JSON data: what plans, checkpoints and option schemas are made of. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
