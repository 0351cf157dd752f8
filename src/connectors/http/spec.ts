/** A webhook: events sent as JSON in HTTP requests, for services that take no queue or database. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "http",
  role: "sink",
  summary: "Sends events as JSON to an HTTP endpoint (a webhook).",
  description: `Sends events to \`url\` in \`POST\` (or \`PUT\`) requests with a JSON body: one
event per request as a JSON object when \`batch_size\` is 1, otherwise up to \`batch_size\`
events per request as a JSON array, in source order. \`format\` chooses what each event
becomes: \`event\`, the whole change event; \`row\`, only the row after the steps (a column
the source did not send — an unchanged TOASTed PostgreSQL value — is left out, never null);
\`debezium\`, the Debezium envelope. Requests go one at a time, in order.

**What a receiver gets.** The body above, with these headers besides \`headers\`:

| header | value |
|---|---|
| \`Content-Type\` | \`application/json\` |
| \`Idempotency-Key\` | the request's events: the id of its first event, then \`+N\` for N events (\`shop/pg-lsn:0/1A2B3C8/0+100\`). An event's id is \`PIPELINE/KIND:POSITION/N\`: the source position of its transaction and its ordinal within it; for a snapshot row \`PIPELINE/KIND:POSITION/r/HASH\`, a hash of its table and key |
| \`Dts-Event-Count\` | the number of events in the body |
| \`Dts-First-Position\`, \`Dts-Last-Position\` | the source positions of the first and the last event, \`KIND:TOKEN\` |
| \`Dts-Op\`, \`Dts-Table\` | with \`batch_size: 1\` only: the event's op (\`insert\`, \`update\`, \`delete\`, \`read\`) and source table (\`schema.table\`) |

**Answers.** A 2xx status acknowledges the request. A 408, a 429, a 5xx, a connection
refused or closed, or no answer within \`timeout_ms\`, is a failure that is retried with
exponential backoff and jitter (up to 10 s apart) for as long as \`retry_for\` allows, each
retry logged with how long the endpoint has been failing; a 429's or a 503's
\`Retry-After\` is honoured (within \`retry_for\`). Any other 4xx says the receiver will never
take these events: with \`on_client_error: "dead_letter"\` (the default) each event of the
request goes to the pipeline's dead-letter sink with the status and the start of the answer's
body as its reason, and the pipeline goes on; with \`"stop"\` the pipeline stops.

**Delivery: at-least-once, deduplicated by \`Idempotency-Key\`.** A write resolves — and the
checkpoint may move past its events — only once every request of it was answered 2xx. A
request that failed is sent again with the same body and the same \`Idempotency-Key\`;
requests of the same write already answered 2xx are not sent again. After a restart the
events after the last checkpoint are sent again, cut into requests from the first of them:
the same keys as before when the runner's batches were cut the same way, new keys (over
events partly received already) when not. A receiver that must act on each event once keeps
the keys it has processed, and when that is not enough, each event's source position
(\`source.position\` in the \`event\` and \`debezium\` formats) with its place among the events
of that position.

\`headers\` are added to every request; they often carry a token, so like the URL they are
never printed in a plan.`,
  example: `sink hook = http {
  url: env("WEBHOOK_URL", "https://hooks.example.com/dts")
  headers: { Authorization: env("WEBHOOK_AUTH", "Bearer change-me") }
  batch_size: 100
  timeout_ms: 5000
}`,
  options: {
    url: field.string("The endpoint, an http:// or https:// URL.", {
      required: true,
      secret: true,
      example: `"https://hooks.example.com/dts"`,
    }),
    method: field.enumeration(["POST", "PUT"], "The request method.", { default: "POST", example: `"PUT"` }),
    headers: field.record("Headers added to every request, as a record of strings.", {
      values: "string",
      secret: true,
      example: `{ Authorization: "Bearer change-me" }`,
    }),
    batch_size: field.integer(
      "Events per request, at most: 1 sends each event as a JSON object, more send a JSON array.",
      { default: 1, minimum: 1, example: "100" },
    ),
    timeout_ms: field.integer("Milliseconds to wait for an answer before the request counts as failed.", {
      default: 10000,
      minimum: 1,
      example: "5000",
    }),
    on_client_error: field.enumeration(
      ["dead_letter", "stop"],
      "What a 4xx answer other than 408 and 429 does: dead_letter sends the request's events to the dead-letter sink with the status and the answer's body; stop stops the pipeline.",
      { default: "dead_letter", example: `"stop"` },
    ),
    format: field.enumeration(
      ["event", "row", "debezium"],
      "What each event becomes: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
  },
});
