import type { AgentPart } from './agent.js';
import { logsPart } from './logs/logs.part.js';
import { reportsPart } from './reports.js';

/**
 * The parts a simulated agent runs beside pack installs (the local cloud starts one agent per
 * cluster with these). Each capability adds its part here.
 */
export const simulatedAgentParts: AgentPart[] = [logsPart, reportsPart()];
