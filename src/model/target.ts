/** A session as the layers above the protocol address it: the id, and what some transports need. */

/** A session and what some transports need to address it (REST: userId, flowReferenceId, entrypoint). */
export interface SessionTarget {
  sessionId: string;
  userId?: string | undefined;
  flowReferenceId?: string | undefined;
  entrypoint?: string | undefined;
}

export type TargetField = 'userId' | 'flowReferenceId' | 'entrypoint';
