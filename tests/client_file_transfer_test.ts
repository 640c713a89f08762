import assert from "node:assert/strict";
import * as path from "node:path";
import {
  downloadName,
  fetchFile,
  type LinkStream,
  requestTarget,
  serveFile,
} from "../src/client/file_transfer.ts";
import { contentTypeFor, resolveShared } from "../src/client/share.ts";
import { randomBytes, withWorld } from "./helpers/client_fixtures.ts";

async function withDirs(fn: (share: string, downloads: string, outside: string) => Promise<void>) {
  const root = await Deno.makeTempDir({ prefix: "chatos-ft-" });
  try {
    const share = path.join(root, "share");
    const downloads = path.join(root, "downloads");
    await Deno.mkdir(share);
    await fn(share, downloads, root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Bob serves `share` over a real private link while alice fetches `target` into `downloads`. */
function transfer(share: string, downloads: string, target: string) {
  return withWorld(async (w) => {
    const alice = await w.login("alice");
    const bob = await w.login("bob");
    const [a, b] = await w.link(alice, "alice", bob, "bob");
    const [served, fetched] = await Promise.all([
      serveFile(b, share),
      fetchFile(a, target, downloads),
    ]);
    return { served, fetched };
  });
}

Deno.test("file transfer: a few MB over a real private link arrive byte-identical", async () => {
  await withDirs(async (share, downloads) => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    await Deno.mkdir(path.join(share, "sub dir"));
    await Deno.writeFile(path.join(share, "sub dir", "big file.bin"), data);
    const { served, fetched } = await transfer(share, downloads, "sub dir/big file.bin");
    assert.equal(served.status, 200);
    assert.equal(served.bytes, data.length);
    assert.ok(fetched.ok, JSON.stringify(fetched));
    assert.equal(fetched.savedTo, path.join(downloads, "big file.bin"));
    assert.equal(fetched.bytes, data.length);
    assert.equal(fetched.contentType, "application/octet-stream");
    const got = await Deno.readFile(fetched.savedTo);
    assert.equal(got.length, data.length);
    assert.ok(got.every((v, i) => v === data[i]), "same bytes");
  });
});

Deno.test("file transfer: a missing file is a 404 and nothing is saved", async () => {
  await withDirs(async (share, downloads) => {
    const { served, fetched } = await transfer(share, downloads, "nope.txt");
    assert.equal(served.status, 404);
    assert.deepEqual(fetched, {
      ok: false,
      status: 404,
      reason: "Not Found",
      message: "404 Not Found",
    });
    await assert.rejects(Deno.stat(path.join(downloads, "nope.txt")), Deno.errors.NotFound);
  });
});

Deno.test("file transfer: ../ escaping the share is refused with 403", async () => {
  await withDirs(async (share, downloads, outside) => {
    await Deno.writeTextFile(path.join(outside, "secret.txt"), "top secret");
    const { served, fetched } = await transfer(share, downloads, "../secret.txt");
    assert.equal(served.status, 403);
    assert.equal(fetched.ok, false);
    assert.equal(fetched.status, 403);
    await assert.rejects(Deno.stat(path.join(downloads, "secret.txt")), Deno.errors.NotFound);
  });
});

Deno.test("file transfer: path resolution stays inside the share", async () => {
  await withDirs(async (share, _downloads, outside) => {
    await Deno.writeTextFile(path.join(outside, "secret.txt"), "top secret");
    await Deno.writeTextFile(path.join(share, "a.txt"), "hello");
    await Deno.mkdir(path.join(share, "d"));
    await Deno.symlink(path.join(outside, "secret.txt"), path.join(share, "link.txt"));
    const status = async (target: string) => {
      const r = await resolveShared(share, target);
      return r.ok ? 200 : r.status;
    };
    assert.equal(await status("a.txt"), 200);
    assert.equal(await status("d/../a.txt"), 200);
    assert.equal(await status(requestTarget(path.join(share, "a.txt"))), 200);
    assert.equal(await status("../secret.txt"), 403);
    assert.equal(await status("d/../../secret.txt"), 403);
    assert.equal(await status("%2E%2E/secret.txt"), 403);
    assert.equal(await status(path.join(outside, "secret.txt")), 403);
    assert.equal(await status("/etc/passwd"), 403);
    assert.equal(await status("link.txt"), 403);
    // Hidden files, however they are named or reached, are never served.
    await Deno.writeTextFile(path.join(share, ".env"), "SECRET=1");
    await Deno.mkdir(path.join(share, ".git"));
    await Deno.writeTextFile(path.join(share, ".git", "config"), "[core]");
    await Deno.symlink(path.join(share, ".env"), path.join(share, "env-link"));
    assert.equal(await status(".env"), 403);
    assert.equal(await status("%2Eenv"), 403);
    assert.equal(await status("d/../.env"), 403);
    assert.equal(await status(".git/config"), 403);
    assert.equal(await status("env-link"), 403);
    assert.equal(await status(requestTarget(path.join(share, ".env"))), 403);
    assert.equal(await status("d"), 404);
    assert.equal(await status("missing"), 404);
    assert.equal(await status("%E0%A4%A"), 400);
  });
});

Deno.test("file transfer: names and content types", () => {
  assert.equal(downloadName("docs/report.pdf"), "report.pdf");
  assert.equal(downloadName("/abs/x.txt"), "x.txt");
  assert.equal(downloadName(".."), "download");
  assert.equal(contentTypeFor("a/b.PNG"), "image/png");
  assert.equal(contentTypeFor("notes.txt"), "text/plain; charset=utf-8");
  assert.equal(contentTypeFor("blob"), "application/octet-stream");
  assert.equal(requestTarget("a b/c?#%.txt"), "a%20b/c%3F%23%25.txt");
});

Deno.test("file transfer: approve sees name and size; a no answers 403 Declined", async () => {
  await withDirs(async (share, downloads) => {
    await Deno.writeTextFile(path.join(share, "notes.txt"), "twenty-eight bytes of notes\n");
    for (const yes of [false, true]) {
      const seen: { name: string; size: number }[] = [];
      const { served, fetched } = await withWorld(async (w) => {
        const alice = await w.login("alice");
        const bob = await w.login("bob");
        const [a, b] = await w.link(alice, "alice", bob, "bob");
        const [served, fetched] = await Promise.all([
          serveFile(b, share, {
            approve: (f) => {
              seen.push(f);
              return Promise.resolve(yes);
            },
          }),
          fetchFile(a, "notes.txt", downloads),
        ]);
        return { served, fetched };
      });
      assert.deepEqual(seen, [{ name: "notes.txt", size: 28 }]);
      if (yes) {
        assert.equal(served.status, 200);
        assert.ok(fetched.ok);
      } else {
        assert.equal(served.status, 403);
        assert.equal(served.refusal, "declined");
        assert.deepEqual(fetched, {
          ok: false,
          status: 403,
          reason: "Declined",
          message: "403 Declined",
        });
      }
    }
  });
});

/** A link whose peer sends `chunks` then EOF. */
function scriptedLink(chunks: string[]): LinkStream {
  const enc = new TextEncoder();
  const queue = chunks.map((c) => enc.encode(c));
  return {
    read: () => Promise.resolve(queue.shift() ?? null),
    write: () => Promise.resolve(),
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
}

Deno.test("file transfer: a body shorter than Content-Length fails and leaves no file", async () => {
  await withDirs(async (_share, downloads) => {
    const link = scriptedLink([
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly",
      " ten b",
    ]);
    await assert.rejects(fetchFile(link, "x.txt", downloads), /cut short: got 10 of 100 bytes/);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(downloads)), []);
  });
});

Deno.test("file transfer: a response that is not HTTP is rejected", async () => {
  await withDirs(async (_share, downloads) => {
    await assert.rejects(
      fetchFile(scriptedLink(["SSH-2.0-OpenSSH\r\n\r\n"]), "x", downloads),
      /not an HTTP response/,
    );
  });
});
