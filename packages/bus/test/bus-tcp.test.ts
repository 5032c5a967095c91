/** The bus suite over loopback TCP (a broker process, peers here). */
import test from 'ava';
import { busSuite } from './suite.js';

// On Linux loopback TCP peers have a uid (transport-tcp reads it from the kernel); elsewhere none.
busSuite(test, { name: 'tcp', address: () => 'tcp://127.0.0.1:0', osIdentity: process.platform === 'linux' });
