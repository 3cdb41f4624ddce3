import { parseArgs } from 'node:util';
import { claimsSchema, DEV_JWT_SECRET, signBearer } from '@fleetgraph/kit';

const usage = `Prints a development bearer token.

  pnpm token --tenant acme --project web=admin [--project db=viewer] [--tenant-admin] [--user alice] [--expires 12h]

Signed with AUTH_JWT_SECRET (default: the development secret). Roles: admin, editor, viewer.`;

const { values } = parseArgs({
  options: {
    tenant: { type: 'string', default: 'acme' },
    project: { type: 'string', multiple: true, default: [] },
    'tenant-admin': { type: 'boolean', default: false },
    user: { type: 'string', default: 'dev' },
    expires: { type: 'string', default: '12h' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(usage);
  process.exit(0);
}

const projects = Object.fromEntries(
  values.project.map((p) => {
    const [id, role = 'admin'] = p.split('=');
    return [id, role];
  }),
);
const claims = claimsSchema.safeParse({ sub: values.user, tenantId: values.tenant, tenantAdmin: values['tenant-admin'] || undefined, projects });
if (!claims.success) {
  console.error(`invalid token claims: ${claims.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}\n\n${usage}`);
  process.exit(2);
}
console.log(await signBearer(claims.data, process.env.AUTH_JWT_SECRET || DEV_JWT_SECRET, values.expires));
