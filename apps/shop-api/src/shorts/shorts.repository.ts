/**
 * shorts_jobs on the catalog primary (My page must show a job the moment its upload completes, so it
 * reads the primary, not a lagging replica). The SQL is the design: INSERT IGNORE on the upload id makes
 * job creation idempotent; the progress UPDATE only moves forward in stream order.
 */
import { Injectable } from '@nestjs/common';
import { affectedRows, DbNodes } from '#libs/db';
import { sortableStreamId, type ProgressEvent } from '#libs/shorts-jobs';

export interface ShortsJobRow {
  id: string;
  user_id: string;
  file_name: string;
  size_bytes: string;
  source_key: string;
  queue: string;
  status: string;
  progress: number;
  reason: string | null;
  reason_code: string | null;
  result_key: string | null;
  source_expired_at: Date | null;
  result_expired_at: Date | null;
  attempt: number;
  last_event_id: string;
  created_at: Date;
  updated_at: Date;
}

@Injectable()
export class ShortsRepository {
  constructor(private readonly db: DbNodes) {}

  /** true when this call created the row (false: it already existed — a repeated completion). */
  async insert(job: { id: string; userId: string; fileName: string; sizeBytes: number; sourceKey: string; queue: string }): Promise<boolean> {
    const res = await this.db.primary.ds.query(
      'INSERT IGNORE INTO shorts_jobs (id, user_id, file_name, size_bytes, source_key, queue) VALUES (?, ?, ?, ?, ?, ?)',
      [job.id, job.userId, job.fileName, job.sizeBytes, job.sourceKey, job.queue],
    );
    return affectedRows(res) === 1;
  }

  /** QUEUED rows of one queue older than `olderThanS` (the enqueue sweeper's candidates), oldest first. */
  async findStaleQueued(queue: string, olderThanS: number, limit = 100): Promise<Pick<ShortsJobRow, 'id' | 'user_id' | 'source_key'>[]> {
    return this.db.primary.ds.query(
      `SELECT id, user_id, source_key FROM shorts_jobs
        WHERE queue = ? AND status = 'QUEUED' AND created_at < NOW(3) - INTERVAL ? SECOND
        ORDER BY created_at LIMIT ?`,
      [queue, olderThanS, limit],
    );
  }

  /** Jobs of a user that are not finished yet (the per-user active-jobs quota). */
  async countActiveForUser(userId: string): Promise<number> {
    const [row] = await this.db.primary.ds.query(
      "SELECT COUNT(*) AS n FROM shorts_jobs WHERE user_id = ? AND status IN ('QUEUED','DOWNLOADING','GENERATING','STORING','RETRYING')",
      [userId],
    );
    return Number(row.n);
  }

  /** In-flight rows of one queue not updated for `olderThanS`: the sweeper asks BullMQ whether they still live. */
  async findStaleInFlight(queue: string, olderThanS: number, limit = 100): Promise<Pick<ShortsJobRow, 'id' | 'status'>[]> {
    return this.db.primary.ds.query(
      `SELECT id, status FROM shorts_jobs
        WHERE queue = ? AND status IN ('DOWNLOADING','GENERATING','STORING','RETRYING') AND updated_at < NOW(3) - INTERVAL ? SECOND
        ORDER BY updated_at LIMIT ?`,
      [queue, olderThanS, limit],
    );
  }

  /** Finished jobs whose source (what = 'source') or result ('result') is older than `days` and still stored. */
  async findExpired(queue: string, what: 'source' | 'result', days: number, limit = 100): Promise<Pick<ShortsJobRow, 'id' | 'source_key' | 'result_key'>[]> {
    const status = what === 'source' ? "status IN ('DONE','FAILED')" : "status = 'DONE'";
    return this.db.primary.ds.query(
      `SELECT id, source_key, result_key FROM shorts_jobs
        WHERE queue = ? AND ${status} AND ${what}_expired_at IS NULL AND updated_at < NOW(3) - INTERVAL ? DAY
        ORDER BY updated_at LIMIT ?`,
      [queue, days, limit],
    );
  }

  /** updated_at = updated_at: marking must not restart the clock of the other retention period. */
  async markExpired(id: string, what: 'source' | 'result'): Promise<void> {
    await this.db.primary.ds.query(`UPDATE shorts_jobs SET ${what}_expired_at = NOW(3), updated_at = updated_at WHERE id = ?`, [id]);
  }

  async findForUser(id: string, userId: string): Promise<ShortsJobRow | undefined> {
    const [row] = await this.db.primary.ds.query('SELECT * FROM shorts_jobs WHERE id = ? AND user_id = ?', [id, userId]);
    return row;
  }

  async listForUser(userId: string, limit = 50): Promise<ShortsJobRow[]> {
    return this.db.primary.ds.query('SELECT * FROM shorts_jobs WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?', [userId, limit]);
  }

  /** Applies one progress event unless a later one (by stream id) was applied already. */
  async applyEvent(streamId: string, e: ProgressEvent): Promise<boolean> {
    const sid = sortableStreamId(streamId);
    const res = await this.db.primary.ds.query(
      `UPDATE shorts_jobs
          SET status = ?, progress = ?, reason = ?, reason_code = ?, result_key = COALESCE(?, result_key), attempt = ?, last_event_id = ?
        WHERE id = ? AND last_event_id < ?`,
      [e.step, Math.max(0, Math.min(100, Math.round(e.percent))), e.reason?.slice(0, 500) ?? null, e.reasonCode?.slice(0, 40) ?? null, e.resultKey ?? null, e.attempt ?? 0, sid, e.jobId, sid],
    );
    return affectedRows(res) === 1;
  }
}

export function toJobDto(r: ShortsJobRow) {
  return {
    id: r.id,
    fileName: r.file_name,
    sizeBytes: Number(r.size_bytes),
    status: r.status,
    progress: r.progress,
    reason: r.reason,
    reasonCode: r.reason_code ?? null,
    attempt: r.attempt,
    /** The retention sweeper deleted the result archive (the job stays listed). */
    expired: Boolean(r.result_expired_at),
    resultUrl: r.status === 'DONE' && r.result_key && !r.result_expired_at ? `/shorts/jobs/${r.id}/result` : null,
    eventsUrl: `/shorts/jobs/${r.id}/events`,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}
