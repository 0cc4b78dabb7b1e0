package eval

import (
	"fmt"
	"net/smtp"
	"strings"
	"time"
)

// sendMail sends one message from a seller to an address through the
// relay with a plain SMTP client, as the seller's mail server would, and
// reports whether the relay refused it with a permanent error.
func sendMail(addr, from, to string) (refused bool, err error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return false, fmt.Errorf("relay: %w", err)
	}
	defer c.Close()
	if err := c.Hello("mail.sellers.test"); err != nil {
		return false, err
	}
	if err := c.Mail(from); err != nil {
		return permanent(err)
	}
	if err := c.Rcpt(to); err != nil {
		return permanent(err)
	}
	w, err := c.Data()
	if err != nil {
		return permanent(err)
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: about your review\r\nDate: %s\r\n\r\nPlease reconsider.\r\n",
		from, to, time.Now().UTC().Format(time.RFC1123Z))
	if err := w.Close(); err != nil {
		return permanent(err)
	}
	return false, c.Quit()
}

// permanent turns a 5xx reply into refused; anything else is an error.
func permanent(err error) (bool, error) {
	if strings.HasPrefix(err.Error(), "5") {
		return true, nil
	}
	return false, err
}
