import scenario from '../scenarios/http/ceiling.js';
import { k6Options, k6Default } from './lib.js';

export const options = k6Options(scenario);
export default k6Default(scenario);
