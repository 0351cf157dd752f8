/** The sink that drops everything: the far end of a benchmark, with no cost of its own. */
import { defineConnector } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "discard",
  role: "sink",
  summary: "Drops every event; for measuring the rest of a pipeline.",
  description: `Accepts every event and throws it away. Each event is acknowledged as soon as
it arrives, so the checkpoint keeps moving and a source's throughput can be measured without
the cost of a real destination.

It needs nothing and has no options. Nothing is kept, so there is nothing to resume: after a
restart the source continues from its checkpoint as usual.`,
  example: `sink nowhere = discard {}`,
  options: {},
});
