/**
 * A pipeline's checkpoint store as the tools (`dts status`, `dts drop`) open it: the store the
 * plan names, found as a run finds it — the checkpoint file beside the pipeline, or the store
 * of the sink `checkpoint: "postgres"` names (its connector's checkpointStore capability) —
 * so that a tool reads, locks and removes exactly what a run would use.
 */
import { resolve } from "node:path";
import { findSink } from "../connectors/registry.js";
import type { Plan } from "../plan/types.js";
import type { CheckpointStore } from "./contracts.js";
import { FileCheckpointStore } from "./file-checkpoint-store.js";
import type { StartValues } from "./start-values.js";

export type PipelineCheckpoints =
  | { readonly store: CheckpointStore; readonly where: string }
  /** The sink's connector keeps checkpoints during a run but offers the tools no store. */
  | { readonly store?: undefined; readonly where: string; readonly reason: string };

export async function pipelineCheckpoints(plan: Plan, values: StartValues, baseDir: string, tool: string): Promise<PipelineCheckpoints> {
  const setting = plan.pipeline.checkpoint;
  if (setting.kind === "file") {
    const path = resolve(baseDir, setting.path);
    return { store: new FileCheckpointStore(path, plan.pipeline.name), where: path };
  }
  const sink = plan.sinks.find((candidate) => candidate.name === setting.sink);
  const where = `sink ${setting.sink}`;
  if (sink === undefined) return { where, reason: `the pipeline has no sink ${setting.sink}` };
  const capability = findSink(sink.connector)?.checkpointStore;
  if (capability === undefined) return { where: `${where} (${sink.connector})`, reason: `the ${sink.connector} connector offers the tools no checkpoint store` };
  const open = await capability();
  const store = open({ pipeline: plan.pipeline.name, name: sink.name, options: values.sinks.get(sink.name)?.options ?? {}, baseDir, tool });
  return { store, where: store.location === undefined ? `${where} (${sink.connector})` : `${store.location} of ${where}` };
}
