import { Field, ID, InputType } from 'type-graphql';

@InputType({ description: "Which of a cluster's logs to collect; every part is selected unless set to false." })
export class RequestClusterLogsInput {
  @Field(() => ID, { description: 'The cluster; the caller must be an editor or admin of its project.' })
  clusterId!: string;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: true,
    description: 'Logs of all Kubernetes components (kube-system).',
  })
  kubeSystem?: boolean | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: true,
    description: "The platform namespace's logs of the last hour.",
  })
  namespaceLogs?: boolean | null;

  @Field(() => Boolean, {
    nullable: true,
    defaultValue: true,
    description: 'Agent, system and cloud-init logs of every node: the last 10,000 lines of each.',
  })
  nodeLogs?: boolean | null;
}
