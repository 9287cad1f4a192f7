/**
 * The findings queue over SQS, with the bot's own credentials (not a run's: no runbook is involved until
 * someone clicks). Long polling (`WaitTimeSeconds`), at most 10 messages a time; a message stays
 * invisible for `visibilitySeconds` after it is received, and comes back if quell does not delete it.
 */
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import type { FindingsConfig } from '../config.ts';

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
  const sqs = new SQSClient({ region: config.region, maxAttempts: 3 });
  return {
    async receive(signal) {
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
      await sqs.send(
        new DeleteMessageCommand({ QueueUrl: config.queueUrl, ReceiptHandle: message.receiptHandle }),
      );
    },
    async deadLetter(message, reason) {
      if (!config.dlqUrl) throw new Error('no dead-letter queue is configured (findings.dlqUrl)');
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
      const out = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: config.queueUrl, AttributeNames: ['RedrivePolicy'] }),
      );
      return out.Attributes?.RedrivePolicy ?? null;
    },
    destroy() {
      sqs.destroy();
    },
  };
}
