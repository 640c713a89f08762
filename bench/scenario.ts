/**
 * What a scenario is, and what it is given. A scenario module exports one
 * `Scenario`: its name (for --only), the profiles it runs in by default, the
 * result lines it reports with their targets as data, and `run`, which gets a
 * RunContext and nothing else: no module state, so scenarios run in any order
 * or alone. Adding one: write bench/scenarios/<name>.ts, list it in
 * bench/scenarios/mod.ts.
 */
import type { Fixtures } from "./fixtures.ts";
import type { Harness } from "./harness.ts";
import type { Profile, ProfileName } from "./profiles.ts";
import type { Result, Target } from "./report.ts";

export interface RunContext {
  readonly profile: Profile;
  /** Starts servers, ceilings, generators; progress and notes go to h.console. */
  readonly h: Harness;
  /** Processes shared by several scenarios (the Redis-backed cluster), started on first use. */
  readonly fixtures: Fixtures;
  /**
   * Figures earlier scenarios of this run measured, for later ones to cite or
   * build on (e.g. "spm.ours" sets spm-half's pace). Absent when they did not run.
   */
  readonly measured: Map<string, number>;
  /** Reports one line; it must be one the scenario declares, whose target decides `pass`. */
  emit(r: Result): void;
}

export interface Scenario {
  /** Its --only name. */
  readonly name: string;
  /** Other --only names that select it (e.g. "cluster"). */
  readonly groups: readonly string[];
  /** The profiles it runs in when no --only is given. */
  readonly profiles: readonly ProfileName[];
  /** The lines it reports, in order, each with its target (null: no target). */
  readonly targets: Readonly<Record<string, Target | null>>;
  run(ctx: RunContext): Promise<void>;
}

/** A line for each of `names` saying why nothing was measured. */
export function skipAll(ctx: RunContext, names: Iterable<string>, why: string): void {
  for (const s of names) {
    ctx.emit({ scenario: s, value: null, unit: "", ceiling: null, ratio: null, skipped: why });
  }
}
