/**
 * ChatOS 1.0 frames as a discriminated union on `op`.
 * Byte layouts are in docs/PROTOCOL.md.
 */

export const Op = {
  CR: 1,
  SPM: 2,
  SMA: 3,
  TCPAsk: 4,
  TCPAccept: 5,
  TCPAbort: 6,
  TCPConnect: 7,
  ERROR: 8,
} as const;
export type Op = typeof Op[keyof typeof Op];

/** ERROR codes: 1–6 from the RFC, 7 and 9 are this server's documented extensions. */
export const ErrorCode = {
  OK: 1,
  PseudoUnavailable: 2,
  InvalidPseudonym: 3,
  UnreachableUser: 4,
  TcpInProtocol: 5,
  TcpNotInProtocol: 6,
  /** Extension: a chat frame arrived before a successful CR. */
  NotConnected: 7,
  /** Extension: the server cannot serve the request now (presence store down, draining). */
  ServiceUnavailable: 9,
} as const;
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

export const errorCodeName: Record<number, string> = {
  1: "OK",
  2: "Pseudo Unavailable",
  3: "Invalid Pseudonym",
  4: "Unreachable User",
  5: "TCP In Protocol",
  6: "TCP Not In Protocol",
  7: "Not Connected",
  9: "Service Unavailable",
};

export interface CR {
  op: typeof Op.CR;
  pseudo: string;
}
export interface SPM {
  op: typeof Op.SPM;
  sender: string;
  recipient: string;
  message: string;
}
export interface SMA {
  op: typeof Op.SMA;
  sender: string;
  message: string;
}
/** The four private-connection frames share one shape: (A, B, password). */
export interface TcpFrame<O extends TcpOp> {
  op: O;
  /** Always the initiator A. */
  sender: string;
  /** Always the invited user B. */
  recipient: string;
  /** Signed 16-bit on the wire. */
  password: number;
}
export type TcpOp =
  | typeof Op.TCPAsk
  | typeof Op.TCPAccept
  | typeof Op.TCPAbort
  | typeof Op.TCPConnect;
export type TCPAsk = TcpFrame<typeof Op.TCPAsk>;
export type TCPAccept = TcpFrame<typeof Op.TCPAccept>;
export type TCPAbort = TcpFrame<typeof Op.TCPAbort>;
export type TCPConnect = TcpFrame<typeof Op.TCPConnect>;
export interface ErrorFrame {
  op: typeof Op.ERROR;
  /** Signed byte on the wire; unknown codes decode as-is. */
  code: number;
}

export type Frame =
  | CR
  | SPM
  | SMA
  | TCPAsk
  | TCPAccept
  | TCPAbort
  | TCPConnect
  | ErrorFrame;

export type AnyTcpFrame = TCPAsk | TCPAccept | TCPAbort | TCPConnect;

/** The triple that names one private-connection handshake. */
export interface HandshakeKey {
  a: string;
  b: string;
  password: number;
}

export function handshakeKeyOf(f: AnyTcpFrame): HandshakeKey {
  return { a: f.sender, b: f.recipient, password: f.password };
}

/**
 * A handshake's identity as one string, a map key for client and server alike; length prefixes
 * keep ("ab","c") apart from ("a","bc").
 */
export function handshakeId(k: HandshakeKey): string {
  return `${k.a.length}:${k.a}${k.b.length}:${k.b}${k.password}`;
}

export const opName: Record<number, string> = {
  1: "CR",
  2: "SPM",
  3: "SMA",
  4: "TCPAsk",
  5: "TCPAccept",
  6: "TCPAbort",
  7: "TCPConnect",
  8: "ERROR",
};
