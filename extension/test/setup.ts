/**
 * Loaded with `node --require` before the tests: `import "vscode"` resolves to the stub.
 * Unknown members of the stub are inert callables (see vscodeStub.ts).
 */
import Module from "node:module";

const stubPath = require.resolve("./vscodeStub");
const resolver = Module as unknown as {
  _resolveFilename(request: string, parent: unknown, ...rest: unknown[]): string;
};
const original = resolver._resolveFilename.bind(resolver);
resolver._resolveFilename = (request: string, parent: unknown, ...rest: unknown[]): string =>
  request === "vscode" ? stubPath : original(request, parent, ...rest);

// Members the stub does not define resolve to an inert callable (enums read at load time,
// constructors the code under test never reaches).
type Inert = ((...args: unknown[]) => unknown) & Record<string | symbol, unknown>;
// A plain function (not an arrow) so that `class X extends vscode.Something` works.
const inert: Inert = new Proxy(function inertMember() { /* inert */ } as unknown as Inert, {
  get: (_target, key) => (key === "then" || key === Symbol.toPrimitive ? undefined : key === "prototype" ? {} : inert),
  apply: () => inert,
  construct: () => inert,
});
// eslint-disable-next-line @typescript-eslint/no-require-imports
const stub = require(stubPath) as Record<string | symbol, unknown>;
/** `obj` with every missing member inert, recursively for namespaces (`window`, `workspace`). */
function withFallback(obj: Record<string | symbol, unknown>): Record<string | symbol, unknown> {
  return new Proxy(obj, {
    get: (target, key) => {
      if (!(key in target)) return inert;
      const value = target[key];
      const isNamespace = typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
      return isNamespace ? withFallback(value as Record<string | symbol, unknown>) : value;
    },
  });
}
const cached = require.cache[stubPath];
if (cached !== undefined) cached.exports = withFallback(stub);
