/**
 * A job's files in the folder beside the store: its sessions (`<id>.upload`: the upload as it came, or
 * JSON Lines for ids given inline or found by a selector) and its outcomes (`<id>.outcomes.jsonl`,
 * appended by each run). What the service knows of the job itself is in the store.
 */
import { join } from 'node:path';

export const uploadPath = (dir: string, id: string): string => join(dir, `${id}.upload`);
export const outcomesPath = (dir: string, id: string): string => join(dir, `${id}.outcomes.jsonl`);
