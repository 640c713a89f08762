/** Frames in one line, for error messages, logs and test failures. */
import { errorCodeName, type Frame, Op, opName } from "../protocol/mod.ts";

/** One line describing a frame, for error messages and logs. */
export function describeFrame(f: Frame): string {
  switch (f.op) {
    case Op.ERROR:
      return `ERROR ${f.code} (${errorCodeName[f.code] ?? "unknown code"})`;
    case Op.CR:
      return `CR pseudo=${JSON.stringify(f.pseudo)}`;
    case Op.SPM:
      return `SPM ${JSON.stringify(f.sender)} → ${JSON.stringify(f.recipient)}: ${
        JSON.stringify(f.message)
      }`;
    case Op.SMA:
      return `SMA ${JSON.stringify(f.sender)}: ${JSON.stringify(f.message)}`;
    default:
      return `${opName[f.op]} sender=${JSON.stringify(f.sender)} recipient=${
        JSON.stringify(f.recipient)
      } password=${f.password}`;
  }
}
