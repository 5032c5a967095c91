import test from 'ava';
import { registerRpcSuite } from './fixtures/rpc-suite.js';

// Every RPC behaviour over core's in-memory transport, through serve() and connect().
registerRpcSuite(test, 'memory');
