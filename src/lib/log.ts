/**
 * Structured logs: one JSON object per line on stderr. Message bodies are
 * never passed here; callers log pseudos, addresses, codes and reasons only.
 */

export type LogLevel = "error" | "warn" | "info" | "debug";
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
export const LOG_LEVELS = Object.keys(rank) as LogLevel[];

export type Fields = Record<string, unknown>;

/** A log sink for modules that need no Logger of their own (the presence stores). */
export type LogFn = (level: LogLevel, msg: string, fields?: Fields) => void;

export class Logger {
  #max: number;
  #base: Fields;
  #sink: (line: string) => void;

  constructor(
    level: LogLevel = "info",
    base: Fields = {},
    sink: (line: string) => void = (line) => console.error(line),
  ) {
    this.#max = rank[level];
    this.#base = base;
    this.#sink = sink;
  }

  log(level: LogLevel, msg: string, fields?: Fields): void {
    if (rank[level] > this.#max) return;
    this.#sink(JSON.stringify({
      ts: new Date().toISOString(),
      level,
      msg,
      ...this.#base,
      ...fields,
    }));
  }

  error(msg: string, fields?: Fields): void {
    this.log("error", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log("warn", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log("info", msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.log("debug", msg, fields);
  }
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = new Logger("error", {}, () => {});
