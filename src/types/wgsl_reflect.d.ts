// wgsl_reflect's package.json points "main" at a CommonJS file inside a "type": "module" package,
// which Node refuses; src/gpu/reflect.ts therefore imports its ES module build by path. This gives
// that path the package's own types.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
