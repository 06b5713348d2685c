-- A stored message moves its conversation's last_seq and its sender's watermarks, in the
-- statement that inserts it (group commit inserts a whole batch with one statement; the
-- per-row work then runs inside SQLite instead of costing a statement per table).
CREATE TRIGGER messages_advance AFTER INSERT ON messages
BEGIN
    UPDATE conversations SET last_seq = max(last_seq, NEW.seq) WHERE id = NEW.conversation_id;
    UPDATE members
       SET delivered_seq = max(delivered_seq, NEW.seq), read_seq = max(read_seq, NEW.seq)
     WHERE conversation_id = NEW.conversation_id AND user_id = NEW.sender_id;
END;
