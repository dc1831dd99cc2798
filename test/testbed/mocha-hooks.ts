// Mocha root hooks: the test bed starts lazily (useTestbed) and stops once after the last suite.
import { stopTestbed } from "./index.ts";

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestbed();
  },
};
