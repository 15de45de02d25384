// A publisher of the replaced Node.js wallet, as its clients were configured: the real
// @nestjs/microservices RMQ client with default options, only the queue named. It connects
// (declaring `wallet_queue` with amqplib's defaults: durable, no arguments), emits one
// `transaction_emitted` event and closes. Any failure exits non-zero with the error.
//
// Usage: AMQP_URL=amqp://... node emit.js '<json data of the event>'
'use strict';

require('reflect-metadata');
const { ClientProxyFactory, Transport } = require('@nestjs/microservices');
const { lastValueFrom } = require('rxjs');

async function main() {
  const url = process.env.AMQP_URL;
  if (!url) throw new Error('AMQP_URL is not set');
  const data = JSON.parse(process.argv[2]);
  const client = ClientProxyFactory.create({
    transport: Transport.RMQ,
    options: { urls: [url], queue: 'wallet_queue' },
  });
  await client.connect();
  await lastValueFrom(client.emit('transaction_emitted', data));
  await client.close();
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`nestjs publisher failed: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  },
);
