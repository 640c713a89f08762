export * from "./frames.ts";
export * from "./encoder.ts";
export * from "./decoder.ts";
export * from "./tcp_key.ts";
