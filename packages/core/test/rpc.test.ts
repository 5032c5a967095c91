import test from 'ava';
import { registerRpcSuite } from './fixtures/rpc-suite.js';

// Every RPC behaviour with the server in this process, through serve() and connect() over real Unix
// sockets and real Noise channels.
registerRpcSuite(test, 'in-process');
