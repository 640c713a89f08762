/** Two ends of one loopback TCP connection, for unit tests of code that reads and writes sockets. */
export async function socketPair(): Promise<[server: Deno.TcpConn, client: Deno.TcpConn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: l.addr.port }),
    l.accept(),
  ]);
  l.close();
  return [server, client];
}
