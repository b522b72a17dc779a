// The ceiling's reference: a bare Fastify server answering ~1 KB of JSON, no framework, no I/O.
import Fastify from 'fastify';

const body = { id: 1, name: 'reference product', description: 'x'.repeat(900), priceCents: 1999, tags: ['a', 'b', 'c'] };
const app = Fastify({ logger: false });
app.get('/', async () => body);
await app.listen({ port: Number(process.env.PORT || 0), host: '127.0.0.1' });
console.log(`listening ${app.server.address().port}`);
