/** A webhook: events sent as JSON in HTTP requests, for services that take no queue or database. */
import { defineConnector, field } from "../spec.js";

export const sinkSpec = defineConnector({
  name: "http",
  role: "sink",
  summary: "Sends events as JSON to an HTTP endpoint (a webhook).",
  description: `Sends events to \`url\` in \`POST\` (or \`PUT\`) requests with a JSON body: one
event per request as a JSON object when \`batch_size\` is 1, otherwise up to \`batch_size\`
events per request as a JSON array. \`format\` chooses what each event becomes: \`event\`, the
whole change event; \`row\`, only the row after the steps; \`debezium\`, the Debezium
envelope.

A 2xx status acknowledges the request. Any other status, or no answer within
\`timeout_ms\`, is an error and the events are not acknowledged. Delivery is
at-least-once: after an error or a restart a request may be sent again, so a receiver
should be idempotent, for example keyed by the event's position.

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
    format: field.enumeration(
      ["event", "row", "debezium"],
      "What each event becomes: event, the whole change event; row, only the row after the steps; debezium, the Debezium envelope.",
      { default: "event", example: `"row"` },
    ),
  },
});
