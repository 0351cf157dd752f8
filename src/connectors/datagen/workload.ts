/**
 * The `shop` workload: a deterministic stream of changes to a small shop's tables.
 *
 *   shop.customers(id, name, email, created_at)
 *   shop.products(id, name, price numeric(10,2), currency, cost_price numeric(12,4))
 *   shop.orders(id bigint, customer_id, product_id, amount numeric(12,2),
 *               status draft|pending|paid|shipped|cancelled, created_at timestamptz)
 *
 * It first inserts the customers and products, then mixes order inserts, updates (a status
 * moving on, or an amount corrected; with the whole `before` image) and deletes, grouped in
 * transactions of 1 to `transactionSize` changes that share a txid and a commit time.
 *
 * Determinism is the point: everything comes from one seeded PRNG (sfc32, seeded through
 * splitmix32) and the event's sequence number. There is no wall clock in the data: a commit
 * time is a fixed epoch plus a step per sequence number (with microsecond digits, so that a
 * sink that truncates to milliseconds shows). The same seed, `rows` and `transactionSize`
 * therefore give byte-identical output on every machine, which makes resume trivial
 * (regenerate, skip to the position) and the stream usable as test data.
 *
 * The state kept is bounded (at most `MAX_LIVE_ORDERS` orders, in compact form), so a run of
 * any length uses the same memory. Integer amounts are kept in cents and only turned into
 * `Decimal`s when an event is made.
 */
import { Decimal } from "../../model/decimal.js";
import type { ChangeEvent, Op } from "../../model/event.js";
import { seqPosition } from "../../model/position.js";
import { Timestamp } from "../../model/timestamp.js";
import type { Row } from "../../model/value.js";

export interface ShopWorkloadOptions {
  /** Change events in all. */
  readonly rows: number;
  readonly seed: number | bigint;
  /** The most changes one transaction holds. */
  readonly transactionSize: number;
}

export interface GeneratedChange {
  readonly event: ChangeEvent;
  /** The sequence number, from 1; also the event's position. */
  readonly seq: number;
  /** The last change of its transaction: a position a source may resume from. */
  readonly endsTransaction: boolean;
}

/** 2024-01-01T00:00:00Z; commit times count from here. */
const EPOCH_MICROS = 1_704_067_200_000_000n;
/** About one second per event, with microsecond digits. */
const MICROS_PER_SEQ = 1_000_257n;
const MAX_LIVE_ORDERS = 2000;

const FIRST_NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Radia", "Niklaus", "Leslie", "Sophie", "Tim", "Hedy"];
const LAST_NAMES = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Thompson", "Perlman", "Wirth", "Lamport", "Wilson", "Berners-Lee", "Lamarr"];
const ADJECTIVES = ["Red", "Quiet", "Rapid", "Sturdy", "Tiny", "Golden", "Bright", "Classic", "Smart", "Vintage"];
const NOUNS = ["Kettle", "Lamp", "Notebook", "Backpack", "Chair", "Headphones", "Mug", "Bicycle", "Clock", "Umbrella"];
const CURRENCIES = ["EUR", "USD", "GBP"];

type Status = "draft" | "pending" | "paid" | "shipped" | "cancelled";

/** What the status of an order can move to. */
const NEXT_STATUS: Readonly<Record<Status, readonly Status[]>> = {
  draft: ["pending", "pending", "cancelled"],
  pending: ["paid", "paid", "paid", "cancelled"],
  paid: ["shipped", "shipped", "cancelled"],
  shipped: [],
  cancelled: [],
};

interface Customer {
  readonly id: number;
}

interface Product {
  readonly id: number;
  readonly priceCents: number;
}

interface Order {
  readonly id: number;
  readonly customerId: number;
  readonly productId: number;
  amountCents: number;
  status: Status;
  readonly createdMicros: bigint;
}

export class ShopWorkload {
  private readonly random: Random;
  private readonly customerCount: number;
  private readonly productCount: number;
  private readonly customers: Customer[] = [];
  private readonly products: Product[] = [];
  private readonly orders: Order[] = [];
  private nextOrderId = 1_000_001;
  private seq = 0;
  private txid = 0;
  /** Changes left in the current transaction. */
  private txLeft = 0;
  private txMicros = 0n;
  private txTimestamp: Timestamp = new Timestamp(EPOCH_MICROS);

  constructor(private readonly options: ShopWorkloadOptions) {
    this.random = new Random(BigInt(options.seed));
    this.customerCount = clamp(Math.ceil(options.rows * 0.05), 1, 100);
    this.productCount = clamp(Math.ceil(options.rows * 0.02), 1, 20);
  }

  /** Sequence number of the last change made (0 before the first). */
  get position(): number {
    return this.seq;
  }

  /** The next change, or undefined after `rows` of them. */
  next(): GeneratedChange | undefined {
    if (this.seq >= this.options.rows) return undefined;
    this.seq++;
    if (this.txLeft === 0) this.beginTransaction();
    this.txLeft--;
    const event = this.change();
    return { event, seq: this.seq, endsTransaction: this.txLeft === 0 };
  }

  private beginTransaction(): void {
    this.txid++;
    const remaining = this.options.rows - this.seq + 1;
    this.txLeft = Math.min(1 + this.random.int(this.options.transactionSize), remaining);
    this.txMicros = EPOCH_MICROS + BigInt(this.seq) * MICROS_PER_SEQ;
    this.txTimestamp = new Timestamp(this.txMicros);
  }

  private change(): ChangeEvent {
    if (this.customers.length < this.customerCount) return this.insertCustomer();
    if (this.products.length < this.productCount) return this.insertProduct();
    if (this.orders.length === 0) return this.insertOrder();
    const r = this.random.next();
    // Half inserts, a third updates, the rest deletes; at the cap, an insert becomes a delete.
    if (r < 0.5) return this.orders.length < MAX_LIVE_ORDERS ? this.insertOrder() : this.deleteOrder();
    if (r < 0.85) return this.updateOrder();
    return this.deleteOrder();
  }

  private insertCustomer(): ChangeEvent {
    const id = this.customers.length + 1;
    this.customers.push({ id });
    const first = this.random.pick(FIRST_NAMES);
    const last = this.random.pick(LAST_NAMES);
    const row: Row = {
      id,
      name: `${first} ${last}`,
      email: `${first}.${last}${id}@example.com`.toLowerCase(),
      created_at: this.txTimestamp,
    };
    return this.event("customers", "insert", null, row);
  }

  private insertProduct(): ChangeEvent {
    const id = this.products.length + 1;
    const priceCents = 100 + this.random.int(49_900);
    this.products.push({ id, priceCents });
    // Cost between 40% and 80% of the price, to 4 places: an exact decimal of another scale.
    const costUnscaled = Math.round((priceCents * (4000 + this.random.int(4001))) / 100);
    const row: Row = {
      id,
      name: `${this.random.pick(ADJECTIVES)} ${this.random.pick(NOUNS)}`,
      price: cents(priceCents),
      currency: this.random.pick(CURRENCIES),
      cost_price: scaled(costUnscaled, 4),
    };
    return this.event("products", "insert", null, row);
  }

  private insertOrder(): ChangeEvent {
    const customer = this.random.pick(this.customers);
    const product = this.random.pick(this.products);
    const quantity = 1 + this.random.int(5);
    const order: Order = {
      id: this.nextOrderId++,
      customerId: customer.id,
      productId: product.id,
      amountCents: product.priceCents * quantity,
      status: this.random.next() < 0.3 ? "draft" : "pending",
      createdMicros: this.txMicros,
    };
    this.orders.push(order);
    return this.event("orders", "insert", null, orderRow(order));
  }

  private updateOrder(): ChangeEvent {
    const order = this.random.pick(this.orders);
    const before = orderRow(order);
    const moves = NEXT_STATUS[order.status];
    if (moves.length > 0 && this.random.next() < 0.8) {
      order.status = this.random.pick(moves);
    } else {
      // A correction: up to 20% off, never below one cent.
      const discount = Math.floor((order.amountCents * this.random.int(21)) / 100);
      order.amountCents = Math.max(1, order.amountCents - discount - 1);
    }
    return this.event("orders", "update", before, orderRow(order));
  }

  private deleteOrder(): ChangeEvent {
    const index = this.random.int(this.orders.length);
    const order = this.orders[index]!;
    // Swap-remove: O(1), and as deterministic as anything else here.
    this.orders[index] = this.orders[this.orders.length - 1]!;
    this.orders.pop();
    return this.event("orders", "delete", orderRow(order), null);
  }

  private event(table: string, op: Op, before: Row | null, after: Row | null): ChangeEvent {
    const id = (after ?? before)!["id"]!;
    return {
      op,
      before,
      after,
      key: { id },
      source: {
        connector: "datagen",
        db: "shop",
        schema: "shop",
        table,
        position: seqPosition(this.seq),
        ts: this.txTimestamp,
        txid: String(this.txid),
      },
    };
  }
}

function orderRow(order: Order): Row {
  return {
    id: order.id,
    customer_id: order.customerId,
    product_id: order.productId,
    amount: cents(order.amountCents),
    status: order.status,
    created_at: new Timestamp(order.createdMicros),
  };
}

function cents(value: number): Decimal {
  return scaled(value, 2);
}

/** `unscaled / 10^scale` as an exact decimal with that scale (unscaled ≥ 0). */
function scaled(unscaled: number, scale: number): Decimal {
  const digits = String(unscaled).padStart(scale + 1, "0");
  return new Decimal(`${digits.slice(0, -scale)}.${digits.slice(-scale)}`);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counter), seeded through splitmix32 from the seed's
 * 64 low bits: fast, good enough for test data, and the same on every platform because it is
 * all 32-bit integer arithmetic.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: bigint) {
    const bits = BigInt.asUintN(64, seed);
    let state = Number(bits & 0xffffffffn) ^ Math.imul(Number(bits >> 32n), 0x9e3779b9);
    const splitmix = (): number => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** In [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** In [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}
