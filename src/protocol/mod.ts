export * from "./frames.ts";
export * from "./encoder.ts";
export * from "./decoder.ts";
