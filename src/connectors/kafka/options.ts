/** Reading the kafka connector's own kinds of option: a broker list, one of a few words. */
import type { Options } from "../../runtime/connector-options.js";
import { ConnectorError } from "../../runtime/contracts.js";

export function brokersOption(options: Options): string[] {
  const brokers = options["brokers"];
  if (!Array.isArray(brokers) || brokers.length === 0 || !brokers.every((b) => typeof b === "string" && b !== "")) {
    throw new ConnectorError('kafka: option brokers must be a non-empty list of "host:port" strings', false);
  }
  return brokers as string[];
}

export function enumOption<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConnectorError(`kafka: option ${name} must be one of ${allowed.join(", ")}, found "${value}"`, false);
  }
  return value as T;
}

export function booleanOption(options: Options, name: string, fallback: boolean): boolean {
  const value = Object.hasOwn(options, name) ? options[name]! : null;
  if (value === null) return fallback;
  if (typeof value !== "boolean") throw new ConnectorError(`kafka: option ${name} must be true or false, found ${JSON.stringify(String(value))}`, false);
  return value;
}
