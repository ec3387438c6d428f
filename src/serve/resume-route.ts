/**
 * `POST /v1/jobs/{id}/resume`: a failed or cancelled job runs again, as the runner resumes a job: its
 * chunks are opened again, each chunk's ledger skips the sessions already done, and the state of those
 * that may have been sent (a recorded failure, or no outcome below the reservation mark) is checked
 * before anything is sent to them.
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceDeps } from './deps.js';
import { jobView } from './job-model.js';
import { visibleJob } from './route-helpers.js';
import { JOB, JOB_PARAMS, problems, SECURITY } from './schemas.js';

export function resumeRoute(deps: ServiceDeps) {
  return function routes(app: FastifyInstance, _options: unknown, done: () => void): void {
    app.post(
      '/v1/jobs/:id/resume',
      {
        config: { scope: 'jobs:write' },
        schema: {
          summary: 'Resume a failed or cancelled job',
          description:
            "It is queued again and runs on its spec rebuilt from the tenant's config: sessions already done are skipped, those that may have been sent are checked first. A queued, running or succeeded job is refused (409 CR_ERR_API_NOT_RESUMABLE). Scope jobs:write.",
          security: SECURITY,
          params: JOB_PARAMS,
          response: { 202: JOB, ...problems(400, 401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        const job = await visibleJob(deps, request);
        const resumed = await deps.jobs.resume(job);
        return reply.status(202).header('location', `/v1/jobs/${resumed.id}`).send(jobView(resumed));
      },
    );
    done();
  };
}
