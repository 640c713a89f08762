/**
 * The pseudonym policy lives with the protocol (src/protocol/pseudonym.ts),
 * where the client can check a name before sending it; the server's modules
 * keep importing it from here.
 */
export * from "../../protocol/pseudonym.ts";
