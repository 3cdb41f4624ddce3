import { ProjectRoleName } from '@fleetgraph/schema';
import { Field, ID, InputType } from 'type-graphql';

@InputType({ description: 'A new API key of a project.' })
export class CreateApiKeyInput {
  @Field(() => ID, { description: 'The project the key acts in.' })
  projectId!: string;

  @Field({ description: 'What the key is for: 1 to 100 characters.' })
  name!: string;

  @Field(() => ProjectRoleName, { description: 'The role the key acts with in its project.' })
  role!: ProjectRoleName;

  @Field(() => Date, { nullable: true, description: 'When the key stops working (in the future); without it, never.' })
  expiresAt?: Date | null;
}
