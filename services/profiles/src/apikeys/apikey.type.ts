import { Node, UserError } from '@fleetgraph/kit';
import { ProjectRoleName } from '@fleetgraph/schema';
import { Directive, Field, ID, ObjectType, registerEnumType } from 'type-graphql';

registerEnumType(ProjectRoleName, {
  name: 'ProjectRole',
  description:
    'A role in a project: VIEWER reads; EDITOR also creates and changes; ADMIN also deletes and applies updates.',
});

@Directive('@key(fields: "id")')
@ObjectType({
  implements: Node,
  description:
    'An API key (a service account) of a project. It acts as the role it was given in its project, sent as ' +
    '`Authorization: Bearer <key>` on HTTP, graphql-ws and SSE alike; its subject is `apikey:<id>`.',
})
export class ApiKey extends Node {
  @Field(() => ID, { description: 'The project the key acts in.' })
  projectId!: string;

  @Field({ description: 'What the key is for, e.g. "ci-deployer".' })
  name!: string;

  @Field(() => ProjectRoleName, { description: 'The role the key acts with in its project.' })
  role!: ProjectRoleName;

  @Field(() => Date, { description: 'When the key was created.' })
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'When the key stops working; null when it does not expire.' })
  expiresAt!: Date | null;

  @Field(() => Date, {
    nullable: true,
    description: 'When the key was last used, to within about a minute; null when never.',
  })
  lastUsedAt!: Date | null;

  @Field(() => Date, { nullable: true, description: 'When the key was revoked; null while it is not.' })
  revokedAt!: Date | null;
}

@ObjectType({ description: 'The outcome of createApiKey.' })
export class CreateApiKeyPayload {
  @Field(() => ApiKey, { nullable: true, description: 'The key, when it was created.' })
  apiKey!: ApiKey | null;

  @Field(() => String, {
    nullable: true,
    description:
      'The key itself (`fgk_<id>_<secret>`), to send as `Authorization: Bearer <key>`: shown once, never again ' +
      '(only its hash is stored).',
  })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the key was not created; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The outcome of an API key mutation.' })
export class ApiKeyPayload {
  @Field(() => ApiKey, { nullable: true, description: 'The key, when the mutation succeeded.' })
  apiKey!: ApiKey | null;

  @Field(() => [UserError], { description: 'Why the mutation did not succeed; empty on success.' })
  userErrors!: UserError[];
}
