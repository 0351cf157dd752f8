// An application fed by dts: it follows the orders table through Kafka and prints every status
// change as it happens, keeping a count of orders per status. Run several copies with the same
// group and they share the topic's partitions; stop one and the others take over its share.
//
//   KAFKA_BROKERS=127.0.0.1:9092 ORDERS_TOPIC=shop.public.orders GROUP=order-status node app.mjs
//
// LIMIT=n stops after n changes (the example's test uses it). Every change is committed to the
// group only after it was printed, so a crash never skips one.
import { subscribe } from "dts";

const brokers = (process.env.KAFKA_BROKERS ?? "127.0.0.1:9092").split(",");
const topic = process.env.ORDERS_TOPIC ?? "shop.public.orders";
const group = process.env.GROUP ?? "order-status";
const limit = Number(process.env.LIMIT ?? Infinity);

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

/** @type {Map<string, number>} */
const perStatus = new Map();
const count = (status, delta) => status != null && perStatus.set(status, (perStatus.get(status) ?? 0) + delta);

let seen = 0;
for await (const { event } of subscribe({ brokers, topics: [topic], group, signal: stop.signal })) {
  const before = event.before?.status ?? null;
  const after = event.after?.status ?? null;
  const id = (event.after ?? event.before ?? event.key).id;
  if (event.op === "delete") console.log(`order ${id}: ${before ?? "?"} -> deleted`);
  else if (event.op === "update" && before === after && before !== null) console.log(`order ${id}: still ${after}`);
  else console.log(`order ${id}: ${before ?? "new"} -> ${after}`);
  count(before, -1);
  count(after, +1);
  if (++seen >= limit) break;
}
console.log(`statuses: ${[...perStatus].filter(([, n]) => n !== 0).sort().map(([s, n]) => `${s}=${n}`).join(" ")}`);
