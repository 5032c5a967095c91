import test from 'ava';
import { registerRpcSuite } from './fixtures/rpc-suite.js';

// The same behaviours with the server in a separate node process, over a real Unix socket.
registerRpcSuite(test, 'child-process');
