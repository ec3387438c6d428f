/** Counters `GET /emulator/stats` shows. Plain numbers: cheap enough for every frame. */
export interface EmulatorStats {
  handshakes: Record<string, number>;
  connectionsOpen: number;
  connectionsTotal: number;
  framesIn: number;
  answersOut: number;
  sends: number;
  queries: number;
  resetsApplied: number;
  answers: Record<string, number>;
  closes: Record<string, number>;
  drops: number;
  rest: Record<string, number>;
  socket: Record<string, number>;
  /** Token endpoint answers: `issued`, `invalid_client`, `invalid_grant`, … */
  oauth: Record<string, number>;
}

export function createStats(): EmulatorStats {
  return {
    handshakes: {},
    connectionsOpen: 0,
    connectionsTotal: 0,
    framesIn: 0,
    answersOut: 0,
    sends: 0,
    queries: 0,
    resetsApplied: 0,
    answers: {},
    closes: {},
    drops: 0,
    rest: {},
    socket: {},
    oauth: {},
  };
}

export function bump(counter: Record<string, number>, key: string | number): void {
  counter[key] = (counter[key] ?? 0) + 1;
}
