/** What the emulator says each seeded session did (`GET /emulator/sessions/:id`), and what a selector should pick. */
export interface Step {
  flowReferenceId: string;
  node: string;
  timestamp: string;
}

export interface Truth {
  sessionId: string;
  userId: string;
  entrypoint: string;
  endpointReferenceId: string;
  executedSteps: Step[];
}

export interface Row {
  sessionId: string;
  userId: string;
  flowReferenceId: string;
  entrypoint: string;
  lastSeen: string;
}

export async function groundTruth(httpUrl: string, count: number): Promise<Truth[]> {
  const out: Truth[] = [];
  for (let k = 1; k <= count; k++) {
    const res = await fetch(`${httpUrl}/emulator/sessions/session-${k}`);
    if (res.status !== 200) throw new Error(`GET session-${k}: ${res.status}`);
    out.push((await res.json()) as Truth);
  }
  return out;
}

const inWindow = (t: string, since?: string, until?: string): boolean =>
  (since === undefined || Date.parse(t) >= Date.parse(since)) &&
  (until === undefined || Date.parse(t) < Date.parse(until));

const byId = (a: Row, b: Row): number => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0);

export function expectedFlow(truth: Truth[], flow: string, since?: string, until?: string): Row[] {
  return truth
    .flatMap((s) => {
      const hits = s.executedSteps.filter(
        (x) => x.flowReferenceId === flow && inWindow(x.timestamp, since, until),
      );
      if (hits.length === 0) return [];
      const last = hits.reduce((a, b) => (Date.parse(b.timestamp) > Date.parse(a.timestamp) ? b : a));
      return [
        {
          sessionId: s.sessionId,
          userId: s.userId,
          flowReferenceId: flow,
          entrypoint: s.entrypoint,
          lastSeen: last.timestamp,
        },
      ];
    })
    .sort(byId);
}

export function expectedNode(truth: Truth[], node: string, since?: string, until?: string): Row[] {
  return truth
    .flatMap((s) => {
      const last = s.executedSteps[s.executedSteps.length - 1]!;
      if (last.node !== node || !inWindow(last.timestamp, since, until)) return [];
      return [
        {
          sessionId: s.sessionId,
          userId: s.userId,
          flowReferenceId: last.flowReferenceId,
          entrypoint: s.entrypoint,
          lastSeen: last.timestamp,
        },
      ];
    })
    .sort(byId);
}

export function expectedEndpoint(
  truth: Truth[],
  endpoint: string,
  flowReferenceId: string,
  since?: string,
  until?: string,
): Row[] {
  return truth
    .flatMap((s) => {
      const first = s.executedSteps[0]!;
      if (s.endpointReferenceId !== endpoint || !inWindow(first.timestamp, since, until)) return [];
      return [
        {
          sessionId: s.sessionId,
          userId: s.userId,
          flowReferenceId,
          entrypoint: s.entrypoint,
          lastSeen: first.timestamp,
        },
      ];
    })
    .sort(byId);
}

/** A window that cuts through the steps of `flow`: from its step at 30% (inclusive) to the one at 70% (exclusive). */
export function windowThrough(truth: Truth[], flow: string): { since: string; until: string } {
  const times = truth
    .flatMap((s) => s.executedSteps.filter((x) => x.flowReferenceId === flow).map((x) => x.timestamp))
    .sort();
  return { since: times[Math.floor(times.length * 0.3)]!, until: times[Math.floor(times.length * 0.7)]! };
}
