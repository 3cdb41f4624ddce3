import { ApolloGateway } from '@apollo/gateway';
import { beforeAll, describe, expect, it } from 'vitest';
import { readBindings, StreamBindingError, subjectFor } from './binding.js';
import type { GraphQLSchema } from './graphql.js';
import { composeWidgets, widgetsSdl } from './widgets.fixture.js';

describe('@jetstream bindings', () => {
  let supergraphSdl: string;
  let apiSchema: GraphQLSchema;

  beforeAll(async () => {
    supergraphSdl = composeWidgets(await widgetsSdl(), 'http://127.0.0.1:1/graphql');
    const gateway = new ApolloGateway({ supergraphSdl });
    apiSchema = (await gateway.load()).schema as unknown as GraphQLSchema;
    await gateway.stop();
  });

  it('should read every bound Subscription field from the supergraph', () => {
    const bindings = readBindings(supergraphSdl, apiSchema);
    expect([...bindings.keys()]).toEqual(['widgetEvents', 'widgetState', 'widgetBoard']);
    const events = bindings.get('widgetEvents')!;
    expect(events).toMatchObject({
      stream: 'WIDGET_EVENTS',
      subjectTemplate: 'widgets.v1.events.{tenantId}.{widgetId}',
      replay: 'CURSOR',
      cursorField: true,
      complete: undefined,
      authorize: {
        query: 'query Authorize_widgetEvents($widgetId: ID!) { widget(id: $widgetId) { id } }',
        variables: ['widgetId'],
        responseKey: 'widget',
        entity: 'widget',
      },
    });
    const state = bindings.get('widgetState')!;
    expect(state).toMatchObject({ stream: 'WIDGET_STATE', replay: 'LAST', cursorField: false });
    expect([state.complete!({ status: 'DONE' }), state.complete!({ status: 'ACTIVE' })]).toEqual([true, false]);
  });

  it('should list every problem of a supergraph it cannot serve', () => {
    const broken = supergraphSdl
      .replace('widgets.v1.events.{tenantId}.{widgetId}', 'widgets.v1.events.{widgetId}.>')
      .replace(
        'authorize: "widget(id: $widgetId) { id }", replay: LAST',
        'authorize: "widget(id: $nope) { id }", replay: LAST',
      )
      .replace('status in [DONE, FAILED]', 'status ~ DONE')
      .replace(', project: "projectId"', ', project: "nope"');
    let thrown: unknown;
    try {
      readBindings(broken, apiSchema);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StreamBindingError);
    expect((thrown as StreamBindingError).problems).toEqual([
      'Subscription.widgetEvents: subject token ">" is neither a plain token, a {placeholder} nor *',
      'Subscription.widgetEvents: subject must contain {tenantId}, so that no event crosses tenants',
      'Subscription.widgetState: complete "status ~ DONE": unexpected "~ DONE"',
      'Subscription.widgetState: authorize uses $nope, which is no argument of the field',
      'Subscription.widgetState: authorize is not a valid query: Variable "$nope" is not defined by operation "Authorize_widgetState".',
      'Subscription.widgetBoard: project "nope" is no field of WidgetCard',
    ]);
    const unguarded = supergraphSdl.replace(', project: "projectId"', '');
    expect(() => readBindings(unguarded, apiSchema)).toThrow(
      expect.objectContaining({
        problems: [
          'Subscription.widgetBoard: a subject that matches many (a * or a nullable argument) needs project',
          'Subscription.widgetBoard: authorize (a query) or project is needed, so that a caller sees only what it may',
        ],
      }),
    );
  });

  it('should fill a nullable argument not given, and a * token, with a wildcard', () => {
    const board = readBindings(supergraphSdl, apiSchema).get('widgetBoard')!;
    expect(board).toMatchObject({ project: 'projectId', wildcard: true, authorize: undefined, replay: 'LAST' });
    expect(subjectFor(board, 't1', {})).toBe('widgets.v1.board.t1.*.*');
    expect(subjectFor(board, 't1', { projectId: 'p1' })).toBe('widgets.v1.board.t1.p1.*');
    expect(() => subjectFor(board, 't1', { projectId: '*' })).toThrow('projectId must be a plain id');
  });

  it('should fill the tenant from the identity and refuse arguments that are not plain ids', () => {
    const binding = readBindings(supergraphSdl, apiSchema).get('widgetEvents')!;
    expect(subjectFor(binding, 't1', { widgetId: 'w-1_a', tenantId: 'other' })).toBe('widgets.v1.events.t1.w-1_a');
    for (const widgetId of ['a.b', '*', '>', '', 42]) {
      expect(() => subjectFor(binding, 't1', { widgetId })).toThrow('widgetId must be a plain id');
    }
  });
});
