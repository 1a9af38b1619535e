// s3Target(): a replica in any S3-compatible service (AWS, R2, B2, MinIO, Tigris…), on fetch, in
// every runtime. Requests are signed with SigV4 by aws4fetch, or presigned by the application's
// server (the presign callback, for browsers without credentials). Failures that may pass (5xx,
// 429, a reset connection, a request that hangs) are tried again with back-off.
import { AwsClient } from "aws4fetch";
import { SQLITE_IOERR, SQLITE_PERM } from "../../core/constants.js";
import { SqliteError } from "../../core/errors.js";
import { checkKeys } from "../../core/options.js";
import { checkName, type ReplicaTarget } from "./target.js";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}
/** A request to presign: method GET, PUT or DELETE of an object; LIST: ListObjectsV2 of `key` as the prefix (with its continuation token). */
export interface PresignRequest {
  method: string;
  key: string;
  continuationToken?: string;
}
export interface S3TargetOptions {
  /** Default: AWS's endpoint of the region. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** The "folder" of the replica's objects, e.g. "backups/app.db". Default: the bucket's root. */
  prefix?: string;
  /** https://endpoint/bucket/key instead of https://bucket.endpoint/key. Default: true with a custom endpoint. */
  forcePathStyle?: boolean;
  credentials?: S3Credentials;
  /** Instead of credentials: returns a presigned URL for a request. */
  presign?: (request: PresignRequest) => Promise<string>;
  /** Per request, ms (then it is tried again). Default 30000. */
  timeoutMs?: number;
  /** Tries of one request before its failure is reported. Default 8 (over ~16 s of back-off). */
  attempts?: number;
  /** Keys per listing page (max-keys). Default: the service's (1000). */
  listPageSize?: number;
}
const KEYS = ["endpoint", "region", "bucket", "prefix", "forcePathStyle", "credentials", "presign", "timeoutMs", "attempts", "listPageSize"];
const WHERE = "s3Target";

export function s3Target(options: S3TargetOptions): ReplicaTarget {
  checkKeys(options, KEYS, WHERE);
  const { region, bucket, credentials, presign, timeoutMs = 30_000, attempts = 8, listPageSize } = options ?? ({} as S3TargetOptions);
  if (typeof region !== "string" || region === "") throw new TypeError(`${WHERE}: region must be a string`);
  if (typeof bucket !== "string" || bucket === "") throw new TypeError(`${WHERE}: bucket must be a string`);
  if ((credentials === undefined) === (presign === undefined)) throw new TypeError(`${WHERE}: pass credentials or presign (one of them)`);
  if (presign !== undefined && typeof presign !== "function") throw new TypeError(`${WHERE}: presign must be a function`);
  if (credentials !== undefined && (typeof credentials?.accessKeyId !== "string" || typeof credentials.secretAccessKey !== "string")) {
    throw new TypeError(`${WHERE}: credentials must have accessKeyId and secretAccessKey`);
  }
  if (!(timeoutMs > 0)) throw new TypeError(`${WHERE}: timeoutMs must be a number > 0`);
  if (!Number.isInteger(attempts) || attempts < 1) throw new TypeError(`${WHERE}: attempts must be an integer >= 1`);
  if (listPageSize !== undefined && (!Number.isInteger(listPageSize) || listPageSize < 1)) throw new TypeError(`${WHERE}: listPageSize must be an integer >= 1`);
  const prefix = (options.prefix ?? "").replace(/^\/+|\/+$/g, "");
  const endpoint = (options.endpoint ?? `https://s3.${region}.amazonaws.com`).replace(/\/+$/, "");
  const pathStyle = options.forcePathStyle ?? options.endpoint !== undefined;
  let base: string;
  if (pathStyle) base = `${endpoint}/${encodeURIComponent(bucket)}`;
  else {
    const u = new URL(endpoint);
    u.hostname = `${bucket}.${u.hostname}`;
    base = u.toString().replace(/\/+$/, "");
  }
  const client = credentials ? new AwsClient({ ...credentials, service: "s3", region, retries: 0 }) : null;
  const keyOf = (name: string) => (prefix === "" ? name : `${prefix}/${name}`);
  const urlOf = (key: string) => `${base}/${key.split("/").map(encodeURIComponent).join("/")}`;
  const url = `s3://${bucket}${prefix === "" ? "" : `/${prefix}`}`;

  /** One request, tried again while it fails in a way that may pass. */
  async function request(method: string, key: string, what: string, body?: Uint8Array, token?: string): Promise<Response> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** (i - 1)) * (0.75 + Math.random() / 2)));
      try {
        let target: string;
        if (method === "LIST") {
          const q = new URLSearchParams({ "list-type": "2" });
          if (prefix !== "") q.set("prefix", `${prefix}/`);
          if (token !== undefined) q.set("continuation-token", token);
          if (listPageSize !== undefined) q.set("max-keys", String(listPageSize));
          target = presign ? await presign({ method, key: prefix === "" ? "" : `${prefix}/`, continuationToken: token }) : `${base}/?${q}`;
        } else target = presign ? await presign({ method, key }) : urlOf(key);
        const init: RequestInit = { method: method === "LIST" ? "GET" : method, signal: AbortSignal.timeout(timeoutMs) };
        if (body !== undefined) {
          init.body = body as Uint8Array<ArrayBuffer>;
          init.headers = { "content-type": "application/octet-stream" };
        }
        const res = client ? await client.fetch(target, init) : await fetch(target, init);
        if (res.status >= 500 || res.status === 429) {
          last = new Error(`HTTP ${res.status}`);
          await res.body?.cancel();
          continue;
        }
        return res;
      } catch (e) {
        last = e; // a reset, a refused connection, a timeout
      }
    }
    throw new SqliteError(`${url}: ${what} failed ${attempts} times: ${(last as Error)?.message ?? last}`, SQLITE_IOERR);
  }

  async function failed(res: Response, what: string): Promise<never> {
    const text = await res.text().catch(() => "");
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? "";
    const denied = res.status === 401 || res.status === 403;
    throw new SqliteError(`${url}: ${what}: HTTP ${res.status}${code ? ` ${code}` : ""}`, denied ? SQLITE_PERM : SQLITE_IOERR);
  }

  return {
    url,
    async list() {
      const names: string[] = [];
      let token: string | undefined;
      do {
        const res = await request("LIST", "", "listing", undefined, token);
        if (!res.ok) await failed(res, "listing");
        const xml = await res.text();
        for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g)) {
          const key = unescapeXml(m[1]!);
          const name = prefix === "" ? key : key.startsWith(`${prefix}/`) ? key.slice(prefix.length + 1) : null;
          if (name !== null && name !== "" && !name.includes("/")) names.push(name);
        }
        const truncated = /<IsTruncated>true<\/IsTruncated>/.test(xml);
        const next = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
        token = truncated && next ? unescapeXml(next) : undefined;
      } while (token !== undefined);
      return names;
    },
    async get(name) {
      checkName(name);
      const res = await request("GET", keyOf(name), `reading ${name}`);
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok) await failed(res, `reading ${name}`);
      return new Uint8Array(await res.arrayBuffer());
    },
    async put(name, bytes) {
      checkName(name);
      const res = await request("PUT", keyOf(name), `writing ${name}`, bytes);
      if (!res.ok) await failed(res, `writing ${name}`);
      await res.body?.cancel();
    },
    async delete(name) {
      checkName(name);
      const res = await request("DELETE", keyOf(name), `deleting ${name}`);
      if (!res.ok && res.status !== 404) await failed(res, `deleting ${name}`);
      await res.body?.cancel();
    },
  };
}

function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    switch (e) {
      case "lt": return "<";
      case "gt": return ">";
      case "amp": return "&";
      case "quot": return '"';
      case "apos": return "'";
      default: return String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}
