// Entry of the extension-host suite: the e2e harness loads dist/test/index.js (this file,
// bundled) as extensionTestsPath inside code-server, and calls run(). The test files are
// imported statically so esbuild bundles them; each defines its suites when called, after
// mocha has put describe/it on the global object.
import Mocha from 'mocha';
import { defineCommandTests } from './commands.test';
import { defineConnectionTests } from './connection.test';
import { defineGpuTests } from './gpus.test';
import { defineMoneyTests } from './money.test';
import { defineNotebookTests } from './notebook.test';
import { defineOutageTests } from './outage.test';
import { defineRunTests } from './runs.test';
import { defineSecretHubTests } from './secrets-hub.test';

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  const grep = process.env.HEARTH_E2E_GREP;
  if (grep) mocha.grep(grep);
  mocha.suite.emit('pre-require', globalThis, 'hearth-e2e', mocha);
  defineCommandTests();
  defineGpuTests();
  defineRunTests();
  defineNotebookTests();
  defineMoneyTests();
  defineOutageTests();
  defineSecretHubTests();
  // last: it signs out and back in
  defineConnectionTests();
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} extension-host test(s) failed`);
}
