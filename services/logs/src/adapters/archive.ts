import { once } from 'node:events';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { LOG_PART_FOLDERS, type LogParts } from '@fleetgraph/schema';
import { ZipFile } from 'yazl';
import { CollectionError } from '../domain/collection-error.js';
import type { ArchiveOptions, ArchiveSummary, StreamItem } from '../app/ports.js';
import { MANIFEST_FILE, ManifestWriter, type ArchivedFile } from '../domain/manifest.js';

export type { ArchiveOptions, ArchiveSummary };

/** Fails the stream it passes once more than `max` bytes went through. */
class SizeLimit extends Transform {
  private bytes = 0;

  constructor(private readonly max: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.max) {
      callback(
        new CollectionError(
          'TOO_LARGE',
          `the archive grew past the maximum size of ${formatBytes(this.max)}; collect fewer parts`,
        ),
      );
      return;
    }
    callback(null, chunk);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${+(bytes / 1024 ** 3).toFixed(1)} GiB`;
  if (bytes >= 1024 ** 2) return `${+(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${+(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

const broken = (message: string) => new CollectionError('STREAM_BROKEN', message);

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Writes a collection's stream into a zip archive as it arrives, and the archive into storage as
 * it is made: each file becomes an entry `<root>/<path>` fed piece by piece, then Manifest.yaml
 * is written resource by resource. Every write waits while the zip, the size limit or the
 * storage is behind (backpressure), and the stream only gets credit for more as this loop asks
 * for it, so memory stays the same whatever the size of the bundle.
 *
 * @param store receives the archive's bytes (a blob store's `write`) and settles once they are stored
 * @throws CollectionError (TOO_LARGE, STREAM_BROKEN, or the stream's own), or the storage's error; nothing is kept then
 */
export async function writeArchive(
  items: AsyncIterable<StreamItem>,
  store: (archive: Readable) => Promise<{ size: number }>,
  options: ArchiveOptions,
): Promise<ArchiveSummary> {
  const zip = new ZipFile();
  const limit = new SizeLimit(options.maxBytes);
  (zip.outputStream as Readable).pipe(limit);
  zip.on('error', (error: Error) => limit.destroy(error));
  const stored = store(limit);

  // Settles (by rejecting) when storage fails or the collection is aborted: every wait races it.
  const interrupted = new Promise<never>((_, reject) => {
    stored.catch(reject);
    if (options.signal?.aborted) reject(options.signal.reason);
    options.signal?.addEventListener('abort', () => reject(options.signal!.reason), { once: true });
  });
  interrupted.catch(() => {});
  const write = async (stream: PassThrough, text: string) => {
    if (!stream.write(text)) await Promise.race([once(stream, 'drain'), interrupted]);
  };

  const mtime = new Date();
  const folders = (Object.keys(LOG_PART_FOLDERS) as (keyof LogParts)[])
    .filter((part) => options.parts[part])
    .map((part) => `${LOG_PART_FOLDERS[part]}/`);
  const entry = (path: string) => {
    const stream = new PassThrough({ highWaterMark: 64 * 1024 });
    zip.addReadStream(stream, `${options.root}/${path}`, { mtime, compress: true });
    return stream;
  };

  const files: ArchivedFile[] = [];
  const seen = new Set<string>();
  let current: { file: ArchivedFile; stream: PassThrough } | null = null;
  let manifest: { writer: ManifestWriter; stream: PassThrough } | null = null;
  let resources = 0;
  const openManifest = async () => {
    const writer = new ManifestWriter();
    const stream = entry(MANIFEST_FILE);
    const header = { ...options.header, bundle: { ...options.header.bundle, collectedAt: new Date().toISOString() } };
    await write(stream, writer.start(header, files));
    return { writer, stream };
  };

  try {
    for await (const item of items) {
      if (item.type === 'file') {
        if (manifest) throw broken(`the agent sent ${item.path} after the resources`);
        if (!current) {
          if (!folders.some((f) => item.path.startsWith(f)))
            throw broken(`the agent sent ${item.path}, which no requested part holds`);
          if (seen.has(item.path)) throw broken(`the agent sent ${item.path} twice`);
          seen.add(item.path);
          current = { file: { path: item.path, bytes: 0, lines: 0 }, stream: entry(item.path) };
        } else if (current.file.path !== item.path) {
          throw broken(`the agent began ${item.path} before it finished ${current.file.path}`);
        }
        current.file.bytes += Buffer.byteLength(item.data);
        current.file.lines += countLines(item.data);
        if (item.data.length > 0) await write(current.stream, item.data);
        if (item.last) {
          current.stream.end();
          files.push(current.file);
          current = null;
        }
      } else {
        if (current) throw broken(`the agent did not finish ${current.file.path}`);
        manifest ??= await openManifest();
        if (item.type === 'resource') {
          let text: string;
          try {
            text = manifest.writer.item(item.resource);
          } catch (error) {
            throw broken((error as Error).message);
          }
          await write(manifest.stream, text);
          resources++;
          continue;
        }
        // The end marker: check that nothing went missing, then close the archive.
        if (item.files !== files.length || item.resources !== resources) {
          throw broken(
            `the agent sent ${item.files} files and ${item.resources} resources, ` +
              `${files.length} and ${resources} arrived`,
          );
        }
        await write(manifest.stream, manifest.writer.finish());
        manifest.stream.end();
        zip.end();
        const { size } = await Promise.race([stored, interrupted]);
        return {
          sizeBytes: size,
          files: files.length,
          resources,
          lines: files.reduce((n, f) => n + f.lines, 0),
          uncompressedBytes: files.reduce((n, f) => n + f.bytes, 0),
        };
      }
    }
    throw broken('the log stream ended without its end marker');
  } catch (error) {
    // Tear down: storage removes what it wrote, the zip stops.
    limit.destroy(error as Error);
    current?.stream.destroy();
    manifest?.stream.destroy();
    await stored.catch(() => {});
    throw error;
  }
}
