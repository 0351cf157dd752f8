/**
 * Change events as JSON lines. The sink writes them and the source reads them back, so that
 * a recorded stream (or a dead-letter file) can be replayed through any pipeline.
 */
import { defineConnector, field } from "../spec.js";

export const sourceSpec = defineConnector({
  name: "jsonl",
  role: "source",
  summary: "Replays a file of change events, one JSON object per line.",
  description: `Reads a file of change events, one JSON object per line, in the form the
\`jsonl\` sink writes with \`format: "event"\`, and sends them on in file order. Use it to
replay a recorded stream, to feed a test, or to send a dead-letter file through a pipeline
again once the cause is fixed.

Each event keeps the position recorded in it (\`source.position\`). The source reads the file
to its end; then it has nothing more to send. On restart it skips the events the checkpoint
covers. Delivery is at-least-once: events after the last checkpoint may be sent again.

A line that is not a change event is an error that names the file and the line.`,
  example: `source recorded = jsonl {
  path: "recorded/orders.jsonl"
}`,
  options: {
    path: field.string("The file of change events, one JSON object per line, as the jsonl sink writes them with format \"event\".", {
      required: true,
      example: `"recorded/orders.jsonl"`,
    }),
  },
});

export const sinkSpec = defineConnector({
  name: "jsonl",
  role: "sink",
  summary: "Appends each event to a file (or standard output) as one line of JSON.",
  description: `Writes one JSON object per event, one per line, appended to a file, or to standard
output when \`path\` is \`"-"\`. It is the simplest way to see what a pipeline produces, to
record a stream for the \`jsonl\` source, or to keep a pipeline's rejected events as its
\`dead_letter\` sink.

\`format\` chooses what a line holds: \`event\`, the whole change event (op, before, after,
key, source), which the \`jsonl\` source reads back; \`row\`, only the row after the steps;
\`debezium\`, the Debezium envelope (\`op\`, \`before\`, \`after\`, \`source\`, \`ts_ms\`).
Values keep their full precision.

Lines are flushed to the file before their events are acknowledged. Delivery is
at-least-once: after a crash, the events after the last checkpoint are written again, so a
file can hold a line twice.`,
  example: `sink out = jsonl {
  path: "orders.jsonl"
  format: "event"
}`,
  options: {
    path: field.string("The file to append to; \"-\" writes to standard output.", {
      required: true,
      example: `"orders.jsonl"`,
    }),
    format: field.enumeration(
      ["event", "row", "debezium"],
      "What a line holds: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
  },
});
