/**
 * Where writes wait while the pipeline's lock is being taken again. A run whose lock session
 * ended (a database restart, a dropped connection; see run.ts) must write nothing until it
 * holds the lock once more: in between, another run could have taken it. Every sink write
 * attempt and every save through the checkpoint store passes here first; while the gate is
 * shut they wait, and when the run fails meanwhile they are refused, so that nothing waits
 * forever.
 *
 * The gate is shut the moment the lock's client notices its session is gone. A write already
 * on its way then still lands; a write to the lock's own server fails anyway, since what ends
 * the session (a restart, a network cut) ends the write's connection too.
 */

export class WriteGate {
  private opened: Promise<void> | undefined;
  private openIt: (() => void) | undefined;
  private refuse: ((error: unknown) => void) | undefined;
  private failure: { readonly error: unknown } | undefined;

  get isOpen(): boolean {
    return this.opened === undefined && this.failure === undefined;
  }

  /** Resolves at once while the gate is open; else when it opens; rejects once it failed. */
  wait(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure.error);
    return this.opened ?? Promise.resolve();
  }

  shut(): void {
    if (this.opened !== undefined || this.failure !== undefined) return;
    this.opened = new Promise<void>((resolve, reject) => {
      this.openIt = resolve;
      this.refuse = reject;
    });
    // A gate shut and then failed with nobody waiting must not be an unhandled rejection.
    this.opened.catch(() => {});
  }

  open(): void {
    const openIt = this.openIt;
    this.opened = undefined;
    this.openIt = undefined;
    this.refuse = undefined;
    openIt?.();
  }

  /**
   * The run is failing: while the gate is shut, waiting writes and later ones are refused with
   * `error`, since the lock will not be taken again. An open gate stays open: the run still
   * holds its lock, and the last durable checkpoint is still saved.
   */
  fail(error: unknown): void {
    if (this.opened === undefined || this.failure !== undefined) return;
    this.failure = { error };
    const refuse = this.refuse;
    this.opened = undefined;
    this.openIt = undefined;
    this.refuse = undefined;
    refuse?.(error);
  }
}
