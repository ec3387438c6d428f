/**
 * A job's sessions in the folder beside the store while the job is made (`<id>.upload`: the upload as it
 * came, or JSON Lines for ids given inline or found by a selector). Once checked, they are written to the
 * store as the job's chunks and the file is removed: what the service knows of a job is in the store.
 */
import { join } from 'node:path';

export const uploadPath = (dir: string, id: string): string => join(dir, `${id}.upload`);
