// A STAND-IN for the Hugging Face Hub, on loopback: the real Hub cannot be reached from these
// machines. It implements the documented endpoints @huggingface/hub calls for createRepo,
// createBranch and commit, and nothing else:
//   POST /api/repos/create                                  {name, organization, type, private|visibility}
//   POST /api/models/:owner/:name/branch/:branch
//   POST /api/models/:owner/:name/preupload/:rev            {files: [{path, size, sample}]} → uploadMode per file
//   POST /:owner/:name.git/info/lfs/objects/batch           git-lfs batch API ("basic" transfer only)
//   PUT  /lfs-storage/:oid                                  the upload URL the batch hands out
//   POST /api/models/:owner/:name/commit/:rev               NDJSON: header, file (base64), lfsFile, deletedFile
// Files at or above `lfsThreshold` bytes are LFS, as the Hub decides by size (10 MB there).
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';

export interface StandInRepo {
  private: boolean;
  /** branch → path → bytes */
  branches: Map<string, Map<string, Buffer>>;
  /** paths committed as LFS pointers (their bytes came through the LFS upload) */
  lfsPaths: Set<string>;
  commits: { branch: string; summary: string }[];
}

export class StandInHub {
  readonly repos = new Map<string, StandInRepo>();
  /** LFS objects uploaded, by sha256 */
  readonly lfs = new Map<string, Buffer>();
  /** every request, "METHOD path", to check which paths a push took */
  readonly requests: string[] = [];
  url = '';
  private app: FastifyInstance | undefined;

  constructor(
    /** the one token this hub accepts (write access to every namespace) */
    readonly token: string,
    readonly lfsThreshold = 10 * 1000 * 1000,
  ) {}

  async start(): Promise<this> {
    const app = Fastify({ bodyLimit: 512 * 1024 * 1024 });
    this.app = app;
    app.addContentTypeParser(['application/vnd.git-lfs+json'], { parseAs: 'string' }, (_req, body, done) => {
      try {
        done(null, JSON.parse(body as string));
      } catch (err) {
        done(err as Error);
      }
    });
    app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    app.addHook('onRequest', async (req) => {
      this.requests.push(`${req.method} ${req.url.split('?')[0]}`);
    });

    const auth = async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        return reply.code(401).send({ error: 'Invalid credentials in Authorization header' });
      }
    };
    const repoOf = (req: FastifyRequest, reply: FastifyReply): StandInRepo | undefined => {
      const p = req.params as { owner: string; name: string };
      const r = this.repos.get(`${p.owner}/${p.name.replace(/\.git$/, '')}`);
      if (!r) void reply.code(404).send({ error: 'Repository not found' });
      return r;
    };

    app.post('/api/repos/create', { onRequest: auth }, async (req, reply) => {
      const b = req.body as { name?: string; organization?: string; type?: string; private?: boolean; visibility?: string };
      if (!b.name || !b.organization || (b.type ?? 'model') !== 'model') return reply.code(400).send({ error: 'bad request' });
      const id = `${b.organization}/${b.name}`;
      if (this.repos.has(id)) return reply.code(409).send({ error: 'You already created this model repo', url: `${this.url}/${id}` });
      this.repos.set(id, { private: b.private === true || b.visibility === 'private', branches: new Map([['main', new Map()]]), lfsPaths: new Set(), commits: [] });
      return { url: `${this.url}/${id}`, name: id, id: randomBytes(12).toString('hex') };
    });

    app.post('/api/models/:owner/:name/branch/:branch', { onRequest: auth }, async (req, reply) => {
      const r = repoOf(req, reply);
      if (!r) return reply;
      const { branch } = req.params as { branch: string };
      if (r.branches.has(branch)) return reply.code(409).send({ error: 'Reference already exists' });
      r.branches.set(branch, new Map(r.branches.get('main')));
      return {};
    });

    app.post('/api/models/:owner/:name/preupload/:rev', { onRequest: auth }, async (req, reply) => {
      if (!repoOf(req, reply)) return reply;
      const b = req.body as { files: { path: string; size: number; sample: string }[] };
      return { files: b.files.map((f) => ({ path: f.path, uploadMode: f.size >= this.lfsThreshold ? 'lfs' : 'regular', shouldIgnore: false })) };
    });

    app.post('/:owner/:name/info/lfs/objects/batch', { onRequest: auth }, async (req, reply) => {
      if (!repoOf(req, reply)) return reply;
      const b = req.body as { operation: string; transfers?: string[]; objects: { oid: string; size: number }[] };
      if (b.operation !== 'upload' || !(b.transfers ?? ['basic']).includes('basic')) return reply.code(422).send({ message: 'only basic uploads' });
      return {
        transfer: 'basic',
        objects: b.objects.map((o) =>
          this.lfs.has(o.oid) ? { oid: o.oid, size: o.size } : { oid: o.oid, size: o.size, actions: { upload: { href: `${this.url}/lfs-storage/${o.oid}` } } },
        ),
      };
    });

    app.put('/lfs-storage/:oid', async (req, reply) => {
      const { oid } = req.params as { oid: string };
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (createHash('sha256').update(body).digest('hex') !== oid) return reply.code(400).send('sha256 mismatch');
      this.lfs.set(oid, body);
      return reply.code(200).header('etag', `"${oid.slice(0, 16)}"`).send('');
    });

    app.post('/api/models/:owner/:name/commit/:rev', { onRequest: auth }, async (req, reply) => {
      const r = repoOf(req, reply);
      if (!r) return reply;
      const { rev } = req.params as { rev: string };
      const files = r.branches.get(rev);
      if (!files) return reply.code(404).send({ error: `Invalid rev id: ${rev}` });
      const next = new Map(files);
      const lfsPaths = new Set<string>();
      let summary = '';
      for (const line of String(req.body).split('\n').filter(Boolean)) {
        const op = JSON.parse(line) as { key: string; value: Record<string, unknown> };
        const v = op.value;
        if (op.key === 'header') summary = String(v.summary ?? '');
        else if (op.key === 'file') next.set(String(v.path), Buffer.from(String(v.content), v.encoding === 'base64' ? 'base64' : 'utf8'));
        else if (op.key === 'lfsFile') {
          const bytes = this.lfs.get(String(v.oid));
          if (!bytes || bytes.length !== v.size) return reply.code(422).send({ error: `LFS object ${String(v.oid)} was not uploaded` });
          next.set(String(v.path), bytes);
          lfsPaths.add(String(v.path));
        } else if (op.key === 'deletedFile') next.delete(String(v.path));
        else return reply.code(400).send({ error: `unknown operation ${op.key}` });
      }
      r.branches.set(rev, next);
      for (const p of lfsPaths) r.lfsPaths.add(p);
      r.commits.push({ branch: rev, summary });
      const oid = randomBytes(20).toString('hex');
      const { owner, name } = req.params as { owner: string; name: string };
      return { success: true, commitOid: oid, commitUrl: `${this.url}/${owner}/${name}/commit/${oid}`, hookOutput: '' };
    });

    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    this.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    return this;
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
