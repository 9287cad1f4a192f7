/**
 * The findings queue over SQS, with the bot's own credentials (not a run's: no runbook is involved until
 * someone clicks). Long polling (`WaitTimeSeconds`), at most 10 messages a time; a message stays
 * invisible for `visibilitySeconds` after it is received, and comes back if quell does not delete it.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { FindingsConfig } from '../config.ts';

/** The SQS SDK, loaded by the queue's first call rather than when quell starts (docs/benchmarks.md, memory). */
const loadSqs = () => import('@aws-sdk/client-sqs');

/** One received message. */
export interface QueueMessage {
  id: string;
  receiptHandle: string;
  body: string;
  /** How many times SQS has handed this message out (1 on its first delivery). */
  receiveCount: number;
}

/** What the poller needs of a queue. */
export interface FindingsQueue {
  /** Waits (long polling, bounded) for up to 10 messages; `signal` aborts the wait. */
  receive(signal: AbortSignal): Promise<QueueMessage[]>;
  delete(message: QueueMessage): Promise<void>;
  /** Sends the message's body to the dead-letter queue, with the reason as a message attribute. */
  deadLetter(message: QueueMessage, reason: string): Promise<void>;
  /** The queue's redrive policy (JSON as SQS returns it), or null when it has none. */
  redrivePolicy(): Promise<string | null>;
  destroy(): void;
}

/** The SQS queue (and dead-letter queue) of the `findings` configuration. */
export function createSqsFindingsQueue(config: FindingsConfig): FindingsQueue {
  // The SDK and the client, made once by the first call that needs them.
  let client: Promise<{ sdk: Awaited<ReturnType<typeof loadSqs>>; sqs: SQSClient }> | undefined;
  const sqsClient = () =>
    (client ??= loadSqs().then((sdk) => ({
      sdk,
      sqs: new sdk.SQSClient({ region: config.region, maxAttempts: 3 }),
    })));
  return {
    async receive(signal) {
      const {
        sdk: { ReceiveMessageCommand },
        sqs,
      } = await sqsClient();
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: config.queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: config.pollSeconds,
          VisibilityTimeout: config.visibilitySeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        { abortSignal: signal },
      );
      return (out.Messages ?? []).flatMap((m) =>
        m.MessageId && m.ReceiptHandle
          ? [
              {
                id: m.MessageId,
                receiptHandle: m.ReceiptHandle,
                body: m.Body ?? '',
                receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1') || 1,
              },
            ]
          : [],
      );
    },
    async delete(message) {
      const {
        sdk: { DeleteMessageCommand },
        sqs,
      } = await sqsClient();
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.receiptHandle }),
      );
    },
    async deadLetter(message, reason) {
      if (!config.dlqUrl) throw new Error('no dead-letter queue is configured (findings.dlqUrl)');
      const {
        sdk: { SendMessageCommand },
        sqs,
      } = await sqsClient();
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: config.dlqUrl,
          MessageBody: message.body,
          MessageAttributes: {
            'quell-reason': { DataType: 'String', StringValue: reason.slice(0, 256) },
            'quell-source-message-id': { DataType: 'String', StringValue: message.id },
          },
        }),
      );
    },
    async redrivePolicy() {
      const {
        sdk: { GetQueueAttributesCommand },
        sqs,
      } = await sqsClient();
      const out = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['RedrivePolicy'] }),
      );
      return out.Attributes?.RedrivePolicy ?? null;
    },
    destroy() {
      // Only a client that was made (or is being made) has connections to close.
      void client?.then(
        ({ sqs }) => sqs.destroy(),
        () => undefined,
      );
    },
  };
}
