/**
 * What a shared folder serves. Only regular files inside the folder, judged
 * where they really are: a path that escapes it (`..`, an absolute path
 * elsewhere, a symlink pointing out) is refused, and so is anything hidden
 * (a path with a component starting with "."), however it is reached.
 */

import * as path from "node:path";

const MIME: Record<string, string> = {
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".ts": "text/typescript; charset=utf-8",
  ".json": "application/json",
  ".xml": "application/xml",
  ".pdf": "application/pdf",
  ".zip": "application/zip",
  ".gz": "application/gzip",
  ".tar": "application/x-tar",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
  ".webm": "video/webm",
};

/** Content-Type by file extension; application/octet-stream when unknown. */
export function contentTypeFor(filePath: string): string {
  return MIME[path.extname(filePath).toLowerCase()] ?? "application/octet-stream";
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" ||
    (rel !== ".." && !rel.startsWith(".." + path.sep) && !path.isAbsolute(rel));
}

/** True when a component of `rel` (relative to the share) is hidden, like `.git` or `.env`. */
function isHidden(rel: string): boolean {
  return rel.split(path.sep).some((part) => part.startsWith(".") && part !== ".");
}

export type Resolved =
  /** `name`: the file's path inside the share, for the user to read. */
  | { ok: true; file: string; name: string; size: number }
  /** `why`: for the sharing user, not sent to the peer. */
  | { ok: false; status: 400 | 403 | 404; reason: string; why: string };

const bad = (why: string): Resolved => ({ ok: false, status: 400, reason: "Bad Request", why });
const forbidden = (why: string): Resolved => ({ ok: false, status: 403, reason: "Forbidden", why });
const notFound = (why: string): Resolved => ({ ok: false, status: 404, reason: "Not Found", why });

/** Maps a request target onto a regular file inside `shareDir`, or says why not. */
export async function resolveShared(shareDir: string, target: string): Promise<Resolved> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(target.replace(/[?#].*$/s, ""));
  } catch {
    return bad("not a valid path");
  }
  if (decoded === "" || decoded.includes("\0")) return bad("not a valid path");
  const rootAbs = path.resolve(shareDir);
  let rootReal: string;
  try {
    rootReal = await Deno.realPath(rootAbs);
  } catch {
    return notFound("the shared folder is gone");
  }
  let rel: string;
  if (path.isAbsolute(decoded)) {
    const abs = path.normalize(decoded);
    if (isInside(rootAbs, abs)) rel = path.relative(rootAbs, abs);
    else if (isInside(rootReal, abs)) rel = path.relative(rootReal, abs);
    else return forbidden("outside the shared folder");
  } else {
    rel = path.normalize(decoded);
    if (rel === ".." || rel.startsWith(".." + path.sep)) {
      return forbidden("outside the shared folder");
    }
  }
  if (isHidden(rel)) return forbidden("hidden files are never shared");
  let real: string;
  try {
    real = await Deno.realPath(path.join(rootReal, rel));
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) return forbidden("not readable");
    return notFound("no such file");
  }
  // A symlink inside the share may point anywhere: judge where it lands.
  if (!isInside(rootReal, real)) return forbidden("it leads outside the shared folder");
  const realRel = path.relative(rootReal, real);
  if (isHidden(realRel)) return forbidden("hidden files are never shared");
  try {
    const info = await Deno.stat(real);
    if (!info.isFile) return notFound("not a file");
    return { ok: true, file: real, name: realRel, size: info.size };
  } catch {
    return notFound("no such file");
  }
}
