// Mocha root hooks: the test bed starts lazily (useTestbed) and stops once after the last suite.
// Mocha loads this file with require(), which gives it a module instance of its own; the test files
// import index.ts as ES modules. The dynamic import below reaches their instance, the one that knows
// the running test bed (a static import here would stop nothing, and its processes would keep mocha
// from exiting).
export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    const { stopTestbed } = await import("./index.ts");
    await stopTestbed();
  },
};
