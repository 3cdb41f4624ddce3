import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  name: string;
  url: string;
  child: ChildProcess;
  /** Recent output lines, for failure messages. */
  output: string[];
  stop(): Promise<void>;
}

/**
 * Starts a built service (`node <entry>`) and waits for its pino "listening" line, whose `url`
 * is where it serves (services are started with PORT=0 so the OS picks a free port).
 */
export async function startProcess(
  name: string,
  entry: string,
  env: NodeJS.ProcessEnv,
  timeoutMs = 90_000,
  /** Options for node itself, e.g. `--cpu-prof` (which NODE_OPTIONS may not carry). */
  nodeArgs: readonly string[] = [],
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const remember = (line: string) => {
    output.push(line);
    if (output.length > 200) output.shift();
  };
  createInterface({ input: child.stderr! }).on('line', remember);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${output.join('\n')}`)),
      timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${output.join('\n')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      try {
        const entry = JSON.parse(line) as { url?: string; msg?: string };
        if (entry.url && /listening/.test(entry.msg ?? '')) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a JSON log line
      }
    });
  });
  child.removeAllListeners('exit');
  return {
    name,
    url,
    child,
    output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
