/**
 * The synthetic source: a deterministic change stream with no server behind it, so that a
 * quickstart, a demo or a benchmark runs anywhere.
 */
import { defineConnector, field } from "../spec.js";

export const sourceSpec = defineConnector({
  name: "datagen",
  role: "source",
  summary: "Generates a synthetic, repeatable change stream (a small shop) with no database.",
  description: `Generates change events without any server: the \`shop\` workload inserts, updates
and deletes rows of \`shop.customers\`, \`shop.products\` and \`shop.orders\`, grouped in
transactions. It is meant for trying dts out, for demos, and for measuring a pipeline
(together with the \`discard\` sink).

The stream is repeatable: the same \`seed\`, \`rows\` and \`transaction_size\` give the same
changes in the same order, at any speed. After \`rows\` change events the source has nothing
more to send, so \`dts-run --until-caught-up\` stops there.

A position is the number of an event in the stream. On restart the source regenerates the
stream and skips the events the checkpoint covers. Delivery is at-least-once, as for every
source: events after the last checkpoint may be sent again.`,
  example: `source shop = datagen {
  workload: "shop"
  rows: 100000
  changes_per_second: 500
  seed: 42
  transaction_size: 4
}`,
  options: {
    workload: field.enumeration(
      ["shop"],
      "The kind of data: shop generates customers, products and orders, with inserts, updates and deletes in transactions.",
      { default: "shop", example: `"shop"` },
    ),
    rows: field.integer("How many change events to generate in all; then the source has nothing more to send.", {
      default: 1000,
      minimum: 0,
      example: "100000",
    }),
    changes_per_second: field.integer("The rate of change events; 0 means as fast as the pipeline takes them.", {
      default: 0,
      minimum: 0,
      example: "500",
    }),
    seed: field.integer("The seed of the random generator: the same seed gives the same stream.", {
      default: 1,
      big: true,
      example: "42",
    }),
    transaction_size: field.integer("The largest number of changes in one transaction.", {
      default: 4,
      minimum: 1,
      example: "10",
    }),
  },
});
